package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// Garbage collection sized for password hashing.
//
// argon2id allocates its whole work area (m: 19 MiB by default) afresh on
// every call (x/crypto/argon2 cannot reuse one), and the password pool
// runs one call per core. Under sign-in load those work areas are most of
// the live heap, so with Go's default pacing (GOGC=100: collect when the
// heap doubles) the collector runs every second or third hash, and the
// runtime hands the freed pages back to the kernel in between only to
// fault them in again for the next hash. Measured on 2 cores with
// PostgreSQL (make bench, sign-in with password + TOTP at 8 and 32
// clients): twofold spent 34.5 ms of CPU per sign-in with the default and
// 29.9-31.4 ms with GOGC=200, next to a ~29 ms hash.
//
// Unless the operator chose for themselves (GOGC or GOMEMLIMIT in the
// environment), serve therefore collects at 200% growth and sets a soft
// memory limit of memoryBase plus the pool's work areas. The pool bounds
// the work areas and the limit bounds the rest, so memory stays bounded
// under any number of concurrent sign-ins: on 2 cores (a 134 MiB limit)
// the sign-in scenario peaked at 167 MiB RSS at 32 clients, at the same
// CPU per sign-in as with no limit. (A 150 MiB limit peaked at 190 MiB.
// A limit that binds at 8 clients, 140-150 MiB with GOGC=300, loses the
// gain: the runtime then returns pages to stay under it.) Going over the
// limit is not an error: the collector works harder (at most half the
// CPU) rather than failing requests.
//
// In a container (or a systemd unit with MemoryMax) the soft limit also
// stays below the group's memory limit, by a tenth of it and by
// memoryOutside: the kernel kills a process that crosses its group's
// limit, while the soft limit only counts the Go runtime's own memory, not
// the pages of the binary it runs from (about 24 MiB resident here). When
// that leaves less than memoryMinHeap beside the pool's work areas, serve
// warns at start: concurrent sign-ins may then be killed for memory.
const (
	memoryGCPercent = 200
	memoryBase      = 96 << 20
	memoryOutside   = 32 << 20
	memoryMinHeap   = 32 << 20
)

// memoryPlan is the collector's configuration serve applies.
type memoryPlan struct {
	GCPercent int
	Limit     int64 // bytes
	// Container is the control group's memory limit (0: none found), and
	// Tight says it leaves the heap less than memoryMinHeap beside the
	// password pool's work areas.
	Container int64
	Tight     bool
}

// planMemory returns the plan for a password pool holding at most
// hashing bytes of work areas at once inside a control group limited to
// container bytes (0 for none), or false when the operator set GOGC or
// GOMEMLIMIT and the runtime already follows them.
func planMemory(getenv func(string) string, hashing uint64, container int64) (memoryPlan, bool) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return memoryPlan{}, false
	}
	p := memoryPlan{GCPercent: memoryGCPercent, Limit: memoryBase + int64(hashing), Container: container}
	if container > 0 {
		ceiling := container - container/10
		room, need := ceiling-memoryOutside, int64(hashing)+memoryMinHeap
		// Below what the pool needs, the collector would run without end:
		// the limit then stays at that need (under the ceiling), and serve
		// warns that the container is too small.
		p.Limit = min(p.Limit, max(room, min(ceiling, need)))
		p.Tight = room < need
	}
	return p, true
}

// containerNeeds is the smallest container limit, in whole MiB, that
// leaves the heap memoryMinHeap beside hashing bytes of work areas: the
// inverse of planMemory's room, rounded up.
func containerNeeds(hashing uint64) int64 {
	need := int64(hashing) + memoryMinHeap + memoryOutside
	bytes := (need*10 + 8) / 9 // container - container/10 >= need
	return (bytes + 1<<20 - 1) >> 20
}

// applyMemoryPlan configures the process's collector by planMemory, with
// the control group's limit read from the root file system. Only the
// twofold process does (ownsRuntime): tests run serve in-process, and the
// test binary keeps its own settings.
func applyMemoryPlan(log *slog.Logger, getenv func(string) string, hashing uint64) {
	if !ownsRuntime {
		return
	}
	container, _ := containerMemory(os.DirFS("/"))
	p, ok := planMemory(getenv, hashing, container)
	if !ok {
		return
	}
	debug.SetGCPercent(p.GCPercent)
	debug.SetMemoryLimit(p.Limit)
	attrs := []any{"gogc", p.GCPercent, "memory_limit_mib", p.Limit >> 20}
	if p.Container > 0 {
		attrs = append(attrs, "container_memory_mib", p.Container>>20)
	}
	log.Info("garbage collector sized for password hashing", attrs...)
	if p.Tight {
		log.Warn("the memory limit of twofold's container leaves little beside password hashing: concurrent sign-ins may be killed for memory; raise the limit to at least the figure given, or lower password memory",
			"container_memory_mib", p.Container>>20, "password_hashing_mib", hashing>>20,
			"at_least_mib", containerNeeds(hashing))
	}
}
