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

	p, ok := planMemory(env(nil), pool.MaxMemory())
	if !ok {
		t.Fatal("no plan without GOGC or GOMEMLIMIT")
	}
	if want := int64(96+2*19) << 20; p.Limit != want || p.GCPercent != 200 {
		t.Fatalf("plan = %+v, want GOGC 200 and a %d MiB limit", p, want>>20)
	}
	for _, kv := range []map[string]string{{"GOGC": "100"}, {"GOMEMLIMIT": "1GiB"}, {"GOGC": "off", "GOMEMLIMIT": "512MiB"}} {
		if p, ok := planMemory(env(kv), pool.MaxMemory()); ok {
			t.Errorf("with %v the plan overrode the operator: %+v", kv, p)
		}
	}
}
