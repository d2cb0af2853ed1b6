package password

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// fast keeps tests quick; the format and logic are the same.
var fast = Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

func TestHashVerify(t *testing.T) {
	h := New(fast, 2)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id", enc)
	}
	if err := h.Verify(ctx, enc, "correct horse battery staple"); err != nil {
		t.Fatalf("right password: %v", err)
	}
	for _, wrong := range []string{"", "correct horse battery stapl", "Correct horse battery staple", strings.Repeat("x", MaxLen+1)} {
		if err := h.Verify(ctx, enc, wrong); !errors.Is(err, ErrMismatch) {
			t.Errorf("Verify(%q) = %v, want ErrMismatch", wrong, err)
		}
	}
	other, _ := h.Hash(ctx, "correct horse battery staple")
	if other == enc {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

func TestVerifyUnknownAccountFails(t *testing.T) {
	h := New(fast, 1)
	for _, pw := range []string{"", "twofold-dummy-password", "x"} {
		if err := h.Verify(context.Background(), "", pw); !errors.Is(err, ErrMismatch) {
			t.Errorf("unknown account with %q: %v, want ErrMismatch", pw, err)
		}
	}
}

func TestVerifyUsesStoredParams(t *testing.T) {
	old := New(fast, 1)
	enc, _ := old.Hash(context.Background(), "pw")
	// A hasher with new parameters still verifies hashes made with old ones.
	if err := New(Params{Memory: 128, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}, 1).Verify(context.Background(), enc, "pw"); err != nil {
		t.Fatal(err)
	}
}

func TestMalformedHashes(t *testing.T) {
	h := New(fast, 1)
	for _, enc := range []string{"plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5", "$argon2id$v=18$m=64,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=x$c2FsdA$a2V5", "$argon2id$v=19$m=64,t=1,p=1$!!$a2V5", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$"} {
		if err := h.Verify(context.Background(), enc, "pw"); err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("Verify with %q = %v, want a malformed-hash error", enc, err)
		}
	}
}

// TestPoolBoundsConcurrency: with every slot taken, Hash and Verify wait
// for one (here until their context ends) instead of running.
func TestPoolBoundsConcurrency(t *testing.T) {
	h := New(fast, 2)
	enc, _ := h.Hash(context.Background(), "pw")
	h.slots <- struct{}{}
	h.slots <- struct{}{} // the pool is full
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Verify(ctx, enc, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify with a full pool = %v, want it to wait", err)
	}
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash with a full pool = %v, want it to wait", err)
	}
	h.release()
	if err := h.Verify(context.Background(), enc, "pw"); err != nil {
		t.Fatalf("Verify with a free slot: %v", err)
	}
}

func BenchmarkVerifyDefault(b *testing.B) {
	h := New(DefaultParams, 0)
	enc, _ := h.Hash(context.Background(), "correct horse battery staple")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := h.Verify(context.Background(), enc, "correct horse battery staple"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
