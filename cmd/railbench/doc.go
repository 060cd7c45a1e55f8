// Command railbench measures Rail.
//
//	railbench pipeline --packets N --flows F
//
// runs N synthetic GRE-in IPv4/TCP packets over F flows through the
// production pipeline.Worker.Process in memory — no NIC and no I/O in the
// timed loop — and prints packets per second and nanoseconds per packet.
// Every flow is sent once, untimed, before the run (--warmup=false to
// include the first packet of each flow, which misses the connection table).
package main
