package provider

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/twofold-id/twofold/seal"
	"github.com/twofold-id/twofold/store"
)

// sealPurposeSigningKey labels the AES-GCM key that seals signing keys.
const sealPurposeSigningKey = "signing-key"

// KeyStore is what the keyring needs of the store.
type KeyStore interface {
	CreateSigningKey(ctx context.Context, k store.SigningKey) error
	ListSigningKeys(ctx context.Context, retiredAfter time.Time) ([]store.SigningKey, error)
	ActiveSigningKeyID(ctx context.Context, alg string) (string, error)
}

// Keyring holds the token-signing keys in memory: the active private key,
// parsed and precomputed once, and the published JWKS as ready bytes. It is
// rebuilt only when the keys change, never per request.
//
// Private keys are stored sealed (AES-256-GCM under a key derived from the
// server's secret key, bound to their kid), so a database dump reveals none.
// A rotated-out key stays published for Retain after rotation, so ID tokens
// it signed still verify until they expire.
type Keyring struct {
	Store  KeyStore
	Sealer *seal.Sealer
	Now    func() time.Time
	// Retain is how long a retired key stays published: at least the ID
	// token lifespan.
	Retain time.Duration
	Log    *slog.Logger

	mu     sync.RWMutex
	active *jose.JSONWebKey // private
	public []jose.JSONWebKey
	jwks   []byte
}

// Load reads the keys, generating the first one when there is none.
func (k *Keyring) Load(ctx context.Context) error {
	if _, err := k.Store.ActiveSigningKeyID(ctx, string(jose.RS256)); errors.Is(err, store.ErrNotFound) {
		if _, err := k.Rotate(ctx); err != nil && !errors.Is(err, store.ErrConflict) {
			// ErrConflict: another instance created the first key at the same time.
			return err
		}
	} else if err != nil {
		return err
	}
	return k.reload(ctx)
}

// Rotate generates a new RSA-2048 key, makes it active and keeps the old
// one published for Retain. It returns the new kid.
func (k *Keyring) Rotate(ctx context.Context) (string, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("generate signing key: %w", err)
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("encode signing key: %w", err)
	}
	sealed, err := k.Sealer.Seal(sealPurposeSigningKey, der, []byte(kid))
	if err != nil {
		return "", err
	}
	if err := k.Store.CreateSigningKey(ctx, store.SigningKey{KID: kid, Alg: string(jose.RS256), Sealed: sealed, CreatedAt: k.Now()}); err != nil {
		return "", err
	}
	return kid, k.reload(ctx)
}

// Refresh reloads the keys if another instance rotated them. Serve calls
// it periodically, so every instance signs with the active key within one
// period of a rotation.
func (k *Keyring) Refresh(ctx context.Context) error {
	kid, err := k.Store.ActiveSigningKeyID(ctx, string(jose.RS256))
	if err != nil {
		return err
	}
	k.mu.RLock()
	same := k.active != nil && k.active.KeyID == kid
	k.mu.RUnlock()
	if same {
		return nil
	}
	return k.reload(ctx)
}

// RefreshEvery calls Refresh every d until ctx ends.
func (k *Keyring) RefreshEvery(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.Refresh(ctx); err != nil && ctx.Err() == nil {
				k.Log.Warn("refresh signing keys", "err", err)
			}
		}
	}
}

func (k *Keyring) reload(ctx context.Context) error {
	rows, err := k.Store.ListSigningKeys(ctx, k.Now().Add(-k.Retain))
	if err != nil {
		return err
	}
	var active *jose.JSONWebKey
	public := make([]jose.JSONWebKey, 0, len(rows))
	for _, row := range rows {
		der, err := k.Sealer.Open(sealPurposeSigningKey, row.Sealed, []byte(row.KID))
		if err != nil {
			return fmt.Errorf("open signing key %s (is the secret key the one it was sealed with?): %w", row.KID, err)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("parse signing key %s: %w", row.KID, err)
		}
		priv, ok := parsed.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("signing key %s is %T, want RSA", row.KID, parsed)
		}
		priv.Precompute()
		if row.RetiredAt.IsZero() && active == nil {
			active = &jose.JSONWebKey{Key: priv, KeyID: row.KID, Algorithm: row.Alg, Use: "sig"}
		}
		public = append(public, jose.JSONWebKey{Key: &priv.PublicKey, KeyID: row.KID, Algorithm: row.Alg, Use: "sig"})
	}
	if active == nil {
		return errors.New("no active signing key")
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: public})
	if err != nil {
		return fmt.Errorf("encode jwks: %w", err)
	}
	k.mu.Lock()
	k.active, k.public, k.jwks = active, public, jwks
	k.mu.Unlock()
	return nil
}

// PrivateKey returns the active signing key; it is fosite's key getter.
func (k *Keyring) PrivateKey(context.Context) (any, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.active == nil {
		return nil, errors.New("signing keys not loaded")
	}
	return k.active, nil
}

// ActiveKID returns the kid of the active key.
func (k *Keyring) ActiveKID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.active == nil {
		return ""
	}
	return k.active.KeyID
}

// JWKS returns the published key set as JSON.
func (k *Keyring) JWKS() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwks
}

// Verify checks a JWT's signature against the published keys and returns
// its payload. It does not check expiry or claims.
func (k *Keyring) Verify(token string) ([]byte, error) {
	sig, err := jose.ParseSigned(token)
	if err != nil {
		return nil, err
	}
	if len(sig.Signatures) != 1 || sig.Signatures[0].Header.Algorithm != string(jose.RS256) {
		return nil, errors.New("token is not a single RS256 signature")
	}
	kid := sig.Signatures[0].Header.KeyID
	k.mu.RLock()
	defer k.mu.RUnlock()
	for _, pub := range k.public {
		if pub.KeyID == kid {
			return sig.Verify(pub.Key)
		}
	}
	return nil, fmt.Errorf("unknown key id %q", kid)
}

// thumbprint is the RFC 7638 thumbprint of key, used as its kid.
func thumbprint(key crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: key}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}
