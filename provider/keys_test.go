package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
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

// sameSet reports whether got holds exactly want, in any order.
func sameSet(got []string, want ...string) bool {
	a, b := slices.Clone(got), slices.Clone(want)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
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
		for _, alg := range SigningAlgs {
			if a.ActiveKID(alg) == "" || other.ActiveKID(alg) != a.ActiveKID(alg) {
				t.Fatalf("instances disagree on the first %s key: %q vs %q", alg, a.ActiveKID(alg), other.ActiveKID(alg))
			}
		}
		first := a.ActiveKID("")
		firstEC := a.ActiveKID(store.AlgES256)
		kids, err := a.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		second, secondEC := kids[store.AlgRS256], kids[store.AlgES256]
		// The active keys come first, then the retired ones (by kid within
		// each, as they were made at the same instant).
		if got := publishedKIDs(t, a); len(got) != 4 || !sameSet(got[:2], second, secondEC) || !sameSet(got[2:], first, firstEC) {
			t.Fatalf("after rotation JWKS = %v, want the new keys %s %s then the old %s %s", got, second, secondEC, first, firstEC)
		}
		if err := other.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if other.ActiveKID("") != second || other.ActiveKID(store.AlgES256) != secondEC {
			t.Fatalf("other instance signs with %s and %s after refresh, want %s and %s",
				other.ActiveKID(""), other.ActiveKID(store.AlgES256), second, secondEC)
		}
		// Past Retain, the old keys are no longer published.
		clock = clock.Add(2 * time.Hour)
		if _, err := a.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		if got := publishedKIDs(t, a); len(got) != 4 || slices.Contains(got, first) || slices.Contains(got, firstEC) {
			t.Fatalf("JWKS = %v, want the new keys and %s, %s only", got, second, secondEC)
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
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %v, err %v", rows, err)
	}
	for _, row := range rows {
		// A PKCS #8 key in the clear starts with a DER SEQUENCE and holds
		// the algorithm's OID; a sealed one is nonce and ciphertext.
		if row.Sealed[0] == 0x30 || bytes.Contains(row.Sealed, []byte{0x2a, 0x86, 0x48, 0xce, 0x3d}) ||
			bytes.Contains(row.Sealed, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d}) {
			t.Fatalf("stored %s key does not look sealed", row.Alg)
		}
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
	// A token from the ES256 key verifies; one naming another algorithm
	// than its key's is refused.
	ec, _ := k.PrivateKey(WithSigningAlg(context.Background(), store.AlgES256))
	ecSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, _ = ecSigner.Sign([]byte(`{"iss":"y"}`))
	tok, _ = jws.CompactSerialize()
	if payload, err := k.Verify(tok); err != nil || string(payload) != `{"iss":"y"}` {
		t.Fatalf("Verify ES256 = %q, %v", payload, err)
	}
	// PS256 with the RSA key and the RS256 key's kid: go-jose would accept
	// it (an RSA key verifies PS256); only the key's registered algorithm
	// refuses it.
	ps, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: priv}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, _ = ps.Sign([]byte(`{"iss":"z"}`))
	if tok, _ = jws.CompactSerialize(); tok == "" {
		t.Fatal("no PS256 token")
	}
	if _, err := k.Verify(tok); err == nil {
		t.Error("a PS256 token naming the RS256 key's kid verified")
	}
}
