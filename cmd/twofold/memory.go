package main

import (
	"log/slog"
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
const (
	memoryGCPercent = 200
	memoryBase      = 96 << 20
)

// memoryPlan is the collector's configuration serve applies.
type memoryPlan struct {
	GCPercent int
	Limit     int64 // bytes
}

// planMemory returns the plan for a password pool holding at most
// hashing bytes of work areas at once, or false when the operator set
// GOGC or GOMEMLIMIT and the runtime already follows them.
func planMemory(getenv func(string) string, hashing uint64) (memoryPlan, bool) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return memoryPlan{}, false
	}
	return memoryPlan{GCPercent: memoryGCPercent, Limit: memoryBase + int64(hashing)}, true
}

// applyMemoryPlan configures the process's collector by planMemory. Only
// the twofold process does (ownsRuntime): tests run serve in-process, and
// the test binary keeps its own settings.
func applyMemoryPlan(log *slog.Logger, getenv func(string) string, hashing uint64) {
	p, ok := planMemory(getenv, hashing)
	if !ok || !ownsRuntime {
		return
	}
	debug.SetGCPercent(p.GCPercent)
	debug.SetMemoryLimit(p.Limit)
	log.Info("garbage collector sized for password hashing", "gogc", p.GCPercent, "memory_limit_mib", p.Limit>>20)
}
