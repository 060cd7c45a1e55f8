// Package pin places Rail's workers on CPUs: it reads which CPUs the
// process may use, plans which CPU serves which NIC queue, and runs each
// worker on an OS thread pinned to its CPU.
//
// # Plans
//
// PlanFor maps queues to CPUs from a Topology: the CPUs the process may
// use, the isolated ones (isolcpus=), SMT siblings, NUMA nodes and the
// NIC's node. ReadTopology reads it from a sysfs tree (testdata/ holds
// synthetic ones) and Host from this machine; raild run and raild plan
// both call Host and PlanFor, so the printed plan is the one that runs.
//
// An operator's list (the config's cpus:) is checked — one CPU per queue,
// each one the process is allowed to use — and taken as is. Without one,
// every queue gets a physical core of its own while there are cores (two
// busy-pollers on SMT siblings starve each other), preferring the NIC's
// NUMA node, then isolated CPUs, then cores other than CPU 0's, then low
// numbers; CPU 0 itself is skipped whenever another CPU is allowed (it
// usually carries timers, housekeeping and unaffined interrupts). With
// more queues than CPUs, workers share CPUs: correct, but they then
// compete for the core, so size the NIC's queue count (ethtool -L,
// tools/setup-nic.sh) to the cores instead. Topology.Notes says where a
// plan falls short and what to change. NewPlan is PlanFor knowing only
// the allowed CPUs.
//
// For the best cache locality the NIC queue's IRQ should be steered to
// the same CPU as its worker: tools/setup-nic.sh sets smp_affinity_list
// from raild plan --json.
//
// # Pinned goroutines
//
// Go runs a function on a goroutine that first calls runtime.LockOSThread,
// so that it alone runs on its OS thread, and then restricts that thread
// to one CPU with sched_setaffinity(0, …) — pid 0 being the calling
// thread, not the whole process. A busy-polling worker thus owns one core
// and keeps its rings, UMEM and connection table in that core's cache.
//
// The goroutine never calls UnlockOSThread. When the function returns, the
// goroutine exits while still locked and the runtime destroys its thread,
// so a pinned thread is never handed back to run other goroutines (if the
// thread is the process's main thread, the runtime parks it forever
// instead; /proc/self/status then shows the pin). Threads the runtime
// creates on behalf of a locked goroutine are cloned by its template
// thread, so they do not inherit the pin.
//
// # The control plane
//
// Confine restricts every thread of the process to a set of CPUs; raild
// confines everything but its workers to the allowed CPUs no worker runs
// on, so that the runtime, the collector and the control plane never
// preempt a busy-polling worker. Workers started with Go afterwards still
// pin themselves to their CPUs. OnCPUs runs a function on a thread of its
// own allowed on other CPUs: raild starts an upgrade's new process from
// one, so that it plans over every CPU raild was started on, not over the
// confined ones.
//
// Allowed and ThreadCPU ask sched_getaffinity(0) about the calling thread;
// call Allowed from an ordinary goroutine (at start-up) to learn the CPUs
// of the process, which include any restriction from taskset, cpusets or
// the container's cgroup. Off Linux the package builds but cannot pin: Go
// reports errors.ErrUnsupported and Allowed returns 0..NumCPU−1.
package pin
