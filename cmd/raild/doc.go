// Command raild is the Rail forwarder.
//
//	raild run    --config FILE [--idle-spins N] [--idle-wait D]
//	raild replay --config FILE --in IN.pcap --out OUT.pcap [--verdicts V.csv]
//	raild check  --config FILE
//	raild plan   --config FILE [--json]
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
// line and column; nothing is attached. plan prints the queue → CPU plan
// that run uses (package pin). run also serves the admin API that railctl
// talks to, runs the health checks and reloads the file on SIGHUP (package
// control).
//
// raild is wiring only: the work is in packages rings, pipeline, maglev,
// pin and control.
package main
