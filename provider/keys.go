package provider

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
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

// Keyring holds the token-signing keys in memory: the active private key
// of each algorithm, parsed and precomputed once, and the published JWKS as
// ready bytes. It is rebuilt only when the keys change, never per request.
//
// There is one active key per algorithm: RSA-2048 for RS256, which every
// OpenID Connect client can verify and which signs ID tokens by default,
// and P-256 for ES256, for clients that register it (about twenty times
// cheaper to sign with). Private keys are stored sealed (AES-256-GCM under
// a key derived from the server's secret key, bound to their kid), so a
// database dump reveals none. A rotated-out key stays published for Retain
// after rotation, so ID tokens it signed still verify until they expire.
type Keyring struct {
	Store  KeyStore
	Sealer *seal.Sealer
	Now    func() time.Time
	// Retain is how long a retired key stays published: at least the ID
	// token lifespan.
	Retain time.Duration
	Log    *slog.Logger

	mu     sync.RWMutex
	active map[string]*jose.JSONWebKey // by algorithm; private
	public []jose.JSONWebKey
	jwks   []byte
}

// SigningAlgs are the ID token algorithms a client may register, and the
// keyring keeps a key for each; the first is the default.
var SigningAlgs = []string{store.AlgRS256, store.AlgES256}

// Load reads the keys, generating the first key of an algorithm when there
// is none (a new installation, or ES256 after an upgrade).
func (k *Keyring) Load(ctx context.Context) error {
	for _, alg := range SigningAlgs {
		if _, err := k.Store.ActiveSigningKeyID(ctx, alg); errors.Is(err, store.ErrNotFound) {
			if _, err := k.create(ctx, alg); err != nil && !errors.Is(err, store.ErrConflict) {
				// ErrConflict: another instance created it at the same time.
				return err
			}
		} else if err != nil {
			return err
		}
	}
	return k.reload(ctx)
}

// Rotate generates a new key for every algorithm, makes them active and
// keeps the old ones published for Retain. It returns the new kids by
// algorithm.
func (k *Keyring) Rotate(ctx context.Context) (map[string]string, error) {
	kids := map[string]string{}
	for _, alg := range SigningAlgs {
		kid, err := k.create(ctx, alg)
		if err != nil {
			// The keys rotated so far are active in the store: sign with
			// them here too, and say which they are.
			return kids, errors.Join(fmt.Errorf("rotate %s key (rotated: %v): %w", alg, kids, err), k.reload(ctx))
		}
		kids[alg] = kid
	}
	return kids, k.reload(ctx)
}

// create stores a new active key for alg, retiring the previous one.
func (k *Keyring) create(ctx context.Context, alg string) (string, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case store.AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case store.AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		err = fmt.Errorf("unsupported algorithm %q", alg)
	}
	if err != nil {
		return "", fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	kid, err := thumbprint(priv.Public())
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
	if err := k.Store.CreateSigningKey(ctx, store.SigningKey{KID: kid, Alg: alg, Sealed: sealed, CreatedAt: k.Now()}); err != nil {
		return "", err
	}
	return kid, nil
}

// Refresh reloads the keys if another instance rotated them. Serve calls
// it periodically, so every instance signs with the active keys within one
// period of a rotation.
func (k *Keyring) Refresh(ctx context.Context) error {
	for _, alg := range SigningAlgs {
		kid, err := k.Store.ActiveSigningKeyID(ctx, alg)
		if err != nil {
			return err
		}
		if kid != k.ActiveKID(alg) {
			return k.reload(ctx)
		}
	}
	return nil
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
	active := map[string]*jose.JSONWebKey{}
	public := make([]jose.JSONWebKey, 0, len(rows))
	for _, row := range rows {
		priv, err := k.open(row)
		if err != nil {
			return err
		}
		if row.RetiredAt.IsZero() && active[row.Alg] == nil {
			active[row.Alg] = &jose.JSONWebKey{Key: priv, KeyID: row.KID, Algorithm: row.Alg, Use: "sig"}
		}
		public = append(public, jose.JSONWebKey{Key: priv.Public(), KeyID: row.KID, Algorithm: row.Alg, Use: "sig"})
	}
	for _, alg := range SigningAlgs {
		if active[alg] == nil {
			return fmt.Errorf("no active %s signing key", alg)
		}
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

// open unseals and parses a stored key, which must be of its row's
// algorithm.
func (k *Keyring) open(row store.SigningKey) (crypto.Signer, error) {
	der, err := k.Sealer.Open(sealPurposeSigningKey, row.Sealed, []byte(row.KID))
	if err != nil {
		return nil, fmt.Errorf("open signing key %s (is the secret key the one it was sealed with?): %w", row.KID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse signing key %s: %w", row.KID, err)
	}
	switch priv := parsed.(type) {
	case *rsa.PrivateKey:
		if row.Alg == store.AlgRS256 {
			priv.Precompute()
			return priv, nil
		}
	case *ecdsa.PrivateKey:
		if row.Alg == store.AlgES256 && priv.Curve == elliptic.P256() {
			return priv, nil
		}
	}
	return nil, fmt.Errorf("signing key %s is %T, not a key for %s", row.KID, parsed, row.Alg)
}

type signingAlgKey struct{}

// WithSigningAlg returns a context in which PrivateKey gives the active
// key of alg (a client's registered ID token algorithm).
func WithSigningAlg(ctx context.Context, alg string) context.Context {
	return context.WithValue(ctx, signingAlgKey{}, alg)
}

// PrivateKey returns the active signing key of the algorithm ctx names
// (WithSigningAlg), by default RS256; it is fosite's key getter.
func (k *Keyring) PrivateKey(ctx context.Context) (any, error) {
	alg, _ := ctx.Value(signingAlgKey{}).(string)
	k.mu.RLock()
	defer k.mu.RUnlock()
	if key := k.active[cmp.Or(alg, SigningAlgs[0])]; key != nil {
		return key, nil
	}
	return nil, fmt.Errorf("no %s signing key loaded", cmp.Or(alg, SigningAlgs[0]))
}

// ActiveKID returns the kid of the active key of alg ("": RS256).
func (k *Keyring) ActiveKID(alg string) string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if key := k.active[cmp.Or(alg, SigningAlgs[0])]; key != nil {
		return key.KeyID
	}
	return ""
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
	if len(sig.Signatures) != 1 {
		return nil, errors.New("token is not a single signature")
	}
	header := sig.Signatures[0].Header
	pub, err := k.verificationKey(header.KeyID, header.Algorithm)
	if err != nil {
		return nil, err
	}
	return sig.Verify(pub)
}

// verificationKey returns the published public key kid, for a token whose
// header says it was signed with alg. The key's own algorithm, never the
// token's choice, decides: a header naming another is refused.
func (k *Keyring) verificationKey(kid, alg string) (crypto.PublicKey, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	for _, pub := range k.public {
		if pub.KeyID == kid {
			if alg != pub.Algorithm {
				return nil, fmt.Errorf("token signed with %s by %s key %q", alg, pub.Algorithm, pub.KeyID)
			}
			return pub.Key, nil
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
