// Package password hashes and verifies user passwords with argon2id.
//
// Parameters follow OWASP's recommendation (m=19 MiB, t=2, p=1) and are
// stored with each hash in the PHC string format, so they can be raised
// later without invalidating existing hashes. Every hash and verification
// runs through a pool no wider than GOMAXPROCS: argon2id's memory cost is
// per call, so unbounded concurrency would let a burst of sign-ins exhaust
// memory. Callers wait for a slot (or their context).
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	KeyLen  uint32
	SaltLen uint32
}

// DefaultParams are OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}

// ErrMismatch is returned when a password does not match its hash.
var ErrMismatch = errors.New("password: mismatch")

// MaxLen bounds passwords: long enough for any passphrase, short enough
// that hashing cost does not depend on attacker-chosen megabytes.
const MaxLen = 1024

// Hasher hashes and verifies passwords through a bounded pool.
type Hasher struct {
	params Params
	slots  chan struct{}
	// dummy is verified against when the account does not exist, so the
	// time taken does not reveal whether an email is registered.
	dummy string
}

// New returns a Hasher with params and at most workers concurrent hashes
// (0 means GOMAXPROCS: the CPUs Go schedules on, which follows a
// container's CPU limit where NumCPU would count the whole machine's).
func New(params Params, workers int) *Hasher {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	h := &Hasher{params: params, slots: make(chan struct{}, workers)}
	h.dummy, _ = h.hash([]byte("twofold-dummy-password"))
	return h
}

// MaxMemory is the most memory the pool's hashes hold at once: one
// argon2id work area per worker.
func (h *Hasher) MaxMemory() uint64 {
	return uint64(cap(h.slots)) * uint64(h.params.Memory) << 10
}

// Params returns the parameters new hashes use.
func (h *Hasher) Params() Params { return h.params }

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the PHC-format argon2id hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if len(password) > MaxLen {
		return "", fmt.Errorf("password longer than %d bytes", MaxLen)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash([]byte(password))
}

func (h *Hasher) hash(password []byte) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	p := h.params
	key := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify checks password against encoded; ErrMismatch if it does not match.
// An empty encoded hash (unknown account) is checked against a dummy hash
// so that it costs the same time, and then fails.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) error {
	if len(password) > MaxLen {
		return ErrMismatch
	}
	unknown := encoded == ""
	if unknown {
		encoded = h.dummy
	}
	p, salt, want, err := decode(encoded)
	if err != nil {
		return err
	}
	if err := h.acquire(ctx); err != nil {
		return err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	h.release()
	if subtle.ConstantTimeCompare(got, want) != 1 || unknown {
		return ErrMismatch
	}
	return nil
}

// decode parses a PHC argon2id string.
func decode(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	var p Params
	var version int
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("password: hash is not argon2id")
	}
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errors.New("password: unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, errors.New("password: malformed argon2 parameters")
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 {
		return p, nil, nil, errors.New("password: malformed argon2 hash")
	}
	return p, salt, key, nil
}
