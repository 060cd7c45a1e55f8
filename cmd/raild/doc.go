// Command raild is the Rail forwarder.
//
//	raild run    --config FILE [--idle-spins N] [--idle-wait D]
//	raild replay --config FILE --in IN.pcap --out OUT.pcap [--verdicts V.csv]
//	raild check  --config FILE
//	raild plan   --config FILE [--json] [--allowed CPUS] [--sysfs DIR]
//	raild decap  --interface IF [--address ADDR]... [--mode auto|tcx|tc] [--pin PATH] [--detach]
//
// Every command takes --help (its flags, exit status 0); a wrong command
// line is one message that starts with the command's name, exit status 2.
// docs/reference.md lists every flag.
//
// run loads the XDP steering program, opens one AF_XDP socket per NIC
// queue, starts one worker per queue on a goroutine locked to a pinned OS
// thread, serves metrics, and forwards until SIGINT or SIGTERM; then it
// stops the workers and detaches, so the NIC goes back to the kernel. The
// program is attached through a bpf_link: if raild dies, the kernel
// detaches it too. A worker busy-polls while traffic flows; after
// --idle-spins empty polls (default 20000; 0: never) it parks in poll(2)
// for up to --idle-wait (default 50ms) until the next frame arrives.
//
// replay runs the same pipeline.Worker.Process over an Ethernet pcap, for
// tests and for answering "what would Rail do with this capture".
//
// check validates a configuration file and prints every problem with its
// line and column, then whether raild run can use it (run also needs
// interface:); nothing is attached. decap runs on a backend and takes the
// GRE apart (package decap). plan prints the queue → CPU plan
// that run uses (package pin). run also serves the admin API that railctl
// talks to, runs the health checks and reloads the file on SIGHUP (package
// control).
//
// raild is wiring only: the work is in packages rings, pipeline, maglev,
// pin and control.
package main
