package main

import (
	"testing"

	"github.com/twofold-id/twofold/password"
)

// TestPlanMemory: the collector plan leaves an operator's own GOGC or
// GOMEMLIMIT alone, and otherwise bounds memory by the pool's work areas
// plus a fixed allowance.
func TestPlanMemory(t *testing.T) {
	pool := password.New(password.Params{Memory: 19 * 1024, Time: 1, Threads: 1, KeyLen: 16, SaltLen: 16}, 2)
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	p, ok := planMemory(env(nil), pool.MaxMemory(), 0)
	if !ok {
		t.Fatal("no plan without GOGC or GOMEMLIMIT")
	}
	if want := int64(96+2*19) << 20; p.Limit != want || p.GCPercent != 200 {
		t.Fatalf("plan = %+v, want GOGC 200 and a %d MiB limit", p, want>>20)
	}
	for _, kv := range []map[string]string{{"GOGC": "100"}, {"GOMEMLIMIT": "1GiB"}, {"GOGC": "off", "GOMEMLIMIT": "512MiB"}} {
		if p, ok := planMemory(env(kv), pool.MaxMemory(), 512<<20); ok {
			t.Errorf("with %v the plan overrode the operator: %+v", kv, p)
		}
	}
}

// TestPlanMemoryContainer: inside a control group's memory limit the soft
// limit keeps a tenth and memoryOutside below it, never rises above the
// plan without one nor falls below what the pool needs while that fits
// under the limit, and a limit too small for the pool is flagged.
func TestPlanMemoryContainer(t *testing.T) {
	none := func(string) string { return "" }
	const hashing = 2 * 19 << 20
	for _, c := range []struct {
		container, limit int64
		tight            bool
	}{
		{container: 0, limit: (96 + 38) << 20},
		{container: 4 << 30, limit: (96 + 38) << 20},              // roomy: the plan as without
		{container: 200 << 20, limit: (96 + 38) << 20},            // 148 MiB of room: the plan fits
		{container: 160 << 20, limit: 160<<20 - 16<<20 - 32<<20},  // 112 MiB
		{container: 96 << 20, limit: 70 << 20, tight: true},       // room 54 MiB < 38 + 32: the pool's need, flagged
		{container: 30 << 20, limit: 30<<20 - 3<<20, tight: true}, // not even the need fits: the ceiling
	} {
		p, ok := planMemory(none, hashing, c.container)
		if !ok || p.Limit != c.limit || p.Tight != c.tight || p.Container != c.container {
			t.Errorf("container %d MiB: plan %+v (ok %v), want limit %d MiB, tight %v", c.container>>20, p, ok, c.limit>>20, c.tight)
		}
		if c.container > 0 && p.Limit >= c.container {
			t.Errorf("container %d MiB: soft limit %d MiB is not below it", c.container>>20, p.Limit>>20)
		}
	}
	// The size the warning asks for is enough, and a MiB less is not.
	at := containerNeeds(hashing)
	if p, _ := planMemory(none, hashing, at<<20); p.Tight {
		t.Errorf("a container of the %d MiB the warning asks for is still flagged: %+v", at, p)
	}
	if p, _ := planMemory(none, hashing, (at-1)<<20); !p.Tight {
		t.Errorf("a container of %d MiB, one less than asked for, is not flagged: %+v", at-1, p)
	}
}
