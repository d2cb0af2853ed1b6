package provider

import (
	"context"
	"testing"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/twofold-id/twofold/store/storetest"
)

// BenchmarkSignIDToken is the signature every code exchange and refresh
// pays: the floor of those endpoints, RS256 by default and ES256 for the
// clients that register it.
func BenchmarkSignIDToken(b *testing.B) {
	db := storetest.SQLite().Open(b)
	k := newKeyring(b, db, 1, time.Now)
	if err := k.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	signer := &jwt.DefaultSigner{GetPrivateKey: k.PrivateKey}
	claims := jwt.MapClaims{"sub": "u", "iss": "https://id.example.com", "aud": []string{"rp"}, "exp": time.Now().Add(time.Hour).Unix()}
	for _, alg := range SigningAlgs {
		b.Run(alg, func(b *testing.B) {
			ctx := WithSigningAlg(context.Background(), alg)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := signer.Generate(ctx, claims, &jwt.Headers{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJWKS is the discovery-path cost: precomputed bytes.
func BenchmarkJWKS(b *testing.B) {
	db := storetest.SQLite().Open(b)
	k := newKeyring(b, db, 1, time.Now)
	if err := k.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(k.JWKS()) == 0 {
			b.Fatal("empty")
		}
	}
}
