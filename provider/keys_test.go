package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/twofold-id/twofold/seal"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

func newKeyring(t testing.TB, db *store.DB, secret byte, now func() time.Time) *Keyring {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{secret}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Keyring{Store: db, Sealer: s, Now: now, Retain: time.Hour}
}

func publishedKIDs(t *testing.T, k *Keyring) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, key := range set.Keys {
		if !key.IsPublic() {
			t.Fatalf("JWKS publishes a private key: %s", key.KeyID)
		}
		kids = append(kids, key.KeyID)
	}
	return kids
}

// TestKeyRotation: rotation makes a new key active, keeps the old one
// published for Retain, and another instance on the same database follows.
func TestKeyRotation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		db := b.Open(t)
		ctx := context.Background()
		clock := time.Now()
		now := func() time.Time { return clock }
		a, other := newKeyring(t, db, 1, now), newKeyring(t, db, 1, now)
		if err := a.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := other.Load(ctx); err != nil {
			t.Fatal(err)
		}
		first := a.ActiveKID()
		if first == "" || other.ActiveKID() != first {
			t.Fatalf("instances disagree on the first key: %q vs %q", first, other.ActiveKID())
		}
		second, err := a.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if kids := publishedKIDs(t, a); len(kids) != 2 || kids[0] != second || kids[1] != first {
			t.Fatalf("after rotation JWKS = %v, want [%s %s]", kids, second, first)
		}
		if err := other.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if other.ActiveKID() != second {
			t.Fatalf("other instance signs with %s after refresh, want %s", other.ActiveKID(), second)
		}
		// Past Retain, the old key is no longer published.
		clock = clock.Add(2 * time.Hour)
		if _, err := a.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		if kids := publishedKIDs(t, a); len(kids) != 2 || kids[1] != second {
			t.Fatalf("JWKS = %v, want the new key and %s only", kids, second)
		}
	})
}

// TestKeysSealedAtRest: the stored key is not the key, and another secret
// key cannot open it.
func TestKeysSealedAtRest(t *testing.T) {
	db := storetest.SQLite().Open(t)
	ctx := context.Background()
	k := newKeyring(t, db, 1, time.Now)
	if err := k.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := db.ListSigningKeys(ctx, time.Now())
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v, err %v", rows, err)
	}
	if bytes.Contains(rows[0].Sealed, []byte("PRIVATE")) || len(rows[0].Sealed) < 1000 {
		t.Fatal("stored key does not look sealed")
	}
	if err := newKeyring(t, db, 2, time.Now).Load(ctx); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("a keyring with another secret key loaded the keys: %v", err)
	}
}

// TestVerifyHint: only tokens signed by a published key verify.
func TestVerifyHint(t *testing.T) {
	db := storetest.SQLite().Open(t)
	k := newKeyring(t, db, 1, time.Now)
	if err := k.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	priv, _ := k.PrivateKey(context.Background())
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: priv}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, _ := signer.Sign([]byte(`{"iss":"x"}`))
	tok, _ := jws.CompactSerialize()
	if payload, err := k.Verify(tok); err != nil || string(payload) != `{"iss":"x"}` {
		t.Fatalf("Verify = %q, %v", payload, err)
	}
	for name, bad := range map[string]string{"garbage": "a.b.c", "truncated signature": tok[:len(tok)-5], "empty": ""} {
		if _, err := k.Verify(bad); err == nil {
			t.Errorf("%s verified", name)
		}
	}
	// A none-algorithm token is refused.
	if _, err := k.Verify("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0."); err == nil {
		t.Error("alg=none verified")
	}
}
