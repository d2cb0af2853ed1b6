// Package seal protects secrets at rest and derives the keyed hashes
// twofold stores instead of secrets.
//
// Every key is derived from the server's secret key with HKDF-SHA256 and a
// purpose label, so a key for one purpose (sealing signing keys, hashing
// client secrets, …) is useless for another, and a database dump alone
// reveals nothing: the secret key never touches the database.
//
// Sealed values are AES-256-GCM: version byte, 12-byte random nonce,
// ciphertext and tag. Callers bind each value to where it belongs with
// associated data (the user and purpose of a TOTP secret, the kid of a
// signing key), so a sealed value copied to another row fails to open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// MinSecretKeyLen is the shortest secret key accepted: 256 bits.
const MinSecretKeyLen = 32

const version1 = 1

// ErrOpen is returned for a sealed value that is corrupt, forged or bound
// to other associated data.
var ErrOpen = errors.New("seal: cannot open sealed value")

// Sealer seals values and computes keyed hashes under keys derived from one
// secret key.
type Sealer struct {
	secret []byte
	rand   io.Reader
}

// New returns a Sealer for secretKey, which must hold at least 32 bytes
// of entropy. random defaults to crypto/rand.
func New(secretKey []byte, random io.Reader) (*Sealer, error) {
	if len(secretKey) < MinSecretKeyLen {
		return nil, fmt.Errorf("secret key is %d bytes, need at least %d", len(secretKey), MinSecretKeyLen)
	}
	if random == nil {
		random = rand.Reader
	}
	return &Sealer{secret: append([]byte(nil), secretKey...), rand: random}, nil
}

// Key derives a 32-byte key for purpose. Purposes are fixed strings in the
// code ("twofold/signing-key", …); never user input.
func (s *Sealer) Key(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, s.secret, nil, purpose, 32)
	if err != nil {
		panic("seal: hkdf: " + err.Error()) // only for lengths over 255*32
	}
	return k
}

func (s *Sealer) aead(purpose string) cipher.AEAD {
	block, err := aes.NewCipher(s.Key("twofold/seal/" + purpose))
	if err != nil {
		panic("seal: " + err.Error()) // a 32-byte key is always valid
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic("seal: " + err.Error())
	}
	return gcm
}

// Seal encrypts plaintext for purpose, bound to associated data ad.
func (s *Sealer) Seal(purpose string, plaintext, ad []byte) ([]byte, error) {
	gcm := s.aead(purpose)
	out := make([]byte, 1+gcm.NonceSize(), 1+gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	out[0] = version1
	if _, err := io.ReadFull(s.rand, out[1:]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return gcm.Seal(out, out[1:1+gcm.NonceSize()], plaintext, ad), nil
}

// Open decrypts a value sealed for purpose with the same associated data.
func (s *Sealer) Open(purpose string, sealed, ad []byte) ([]byte, error) {
	gcm := s.aead(purpose)
	if len(sealed) < 1+gcm.NonceSize()+gcm.Overhead() || sealed[0] != version1 {
		return nil, ErrOpen
	}
	nonce, ct := sealed[1:1+gcm.NonceSize()], sealed[1+gcm.NonceSize():]
	pt, err := gcm.Open(nil, nonce, ct, ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// MAC returns HMAC-SHA256 of data under the key for purpose. It is the
// keyed hash stored for high-entropy secrets (session ids, client secrets,
// reset tokens): without the secret key, a stolen hash cannot even be
// checked against a guess.
func (s *Sealer) MAC(purpose string, data []byte) []byte {
	m := hmac.New(sha256.New, s.Key("twofold/mac/"+purpose))
	m.Write(data)
	return m.Sum(nil)
}

// Equal compares two MACs in constant time.
func Equal(a, b []byte) bool { return hmac.Equal(a, b) }
