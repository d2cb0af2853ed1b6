package mfa

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/twofold-id/twofold/store"
)

// Methods a security key proves, and the errors of its ceremonies.
const (
	MethodSecurityKey = "security_key"
	MethodPasskey     = "passkey"
	// ceremonyLifespan bounds how long a user may take to touch their key.
	ceremonyLifespan = 5 * time.Minute
	maxKeyName       = 64
)

var (
	// ErrKeyRejected covers every failed ceremony: wrong origin or RP id,
	// wrong or replayed challenge, expired ceremony, unknown or removed
	// key, bad signature, a counter that went backwards.
	ErrKeyRejected = errors.New("mfa: security key not accepted")
	// ErrKeyExists is a key registered already.
	ErrKeyExists = errors.New("mfa: this security key is registered already")
	// ErrKeysUnavailable: this server has no WebAuthn relying party (its
	// issuer's host is an IP address).
	ErrKeysUnavailable = errors.New("mfa: security keys are unavailable on this server")
)

// KeysAvailable reports whether security keys can be used here.
func (s *Service) KeysAvailable() bool { return s.WebAuthn != nil }

// NewWebAuthn configures the relying party: its id is the issuer's host and
// its origins the issuer's origin plus any configured; attestation is not
// asked for (twofold trusts the key the user registers, not its maker);
// user verification is preferred, not required (a key with or without a
// PIN is a second factor); resident keys are allowed, not required.
func NewWebAuthn(displayName, rpID string, origins []string) (*webauthn.WebAuthn, error) {
	return webauthn.New(&webauthn.Config{
		RPID: rpID, RPDisplayName: displayName, RPOrigins: origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementDiscouraged,
			UserVerification: protocol.VerificationPreferred,
		},
	})
}

// Key is a registered security key or passkey as the settings page shows it.
type Key struct {
	ID         string // base64url credential id
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time
	Passkey    bool
}

// waUser adapts a user and their credentials to the library.
type waUser struct {
	handle []byte
	user   store.User
	creds  []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return u.handle }
func (u *waUser) WebAuthnName() string                       { return u.user.Email }
func (u *waUser) WebAuthnDisplayName() string                { return cmp.Or(u.user.Name, u.user.Email) }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// credentialOf decodes the library's credential record kept in a row.
func credentialOf(r store.WebAuthnCredential) (webauthn.Credential, error) {
	var c webauthn.Credential
	if err := json.Unmarshal([]byte(r.Data), &c); err != nil {
		return c, fmt.Errorf("decode webauthn credential: %w", err)
	}
	return c, nil
}

// waUserOf loads the user's credentials. The user handle given to
// authenticators is a keyed hash of the user id: stable, opaque, and
// telling nothing about the account.
func (s *Service) waUserOf(ctx context.Context, user store.User) (*waUser, []store.WebAuthnCredential, error) {
	rows, err := s.Store.ListWebAuthnCredentials(ctx, user.ID)
	if err != nil {
		return nil, nil, err
	}
	u := &waUser{handle: s.Sealer.MAC("webauthn-user-handle", []byte(user.ID)), user: user}
	for _, r := range rows {
		c, err := credentialOf(r)
		if err != nil {
			return nil, nil, err
		}
		u.creds = append(u.creds, c)
	}
	return u, rows, nil
}

// Keys lists the user's security keys and passkeys.
func (s *Service) Keys(ctx context.Context, userID string) ([]Key, error) {
	rows, err := s.Store.ListWebAuthnCredentials(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Key, 0, len(rows))
	for _, r := range rows {
		c, err := credentialOf(r)
		if err != nil {
			return nil, err
		}
		out = append(out, Key{ID: base64.RawURLEncoding.EncodeToString(r.ID), Name: r.Name, CreatedAt: r.CreatedAt,
			LastUsedAt: r.LastUsedAt, Passkey: isPasskey(c)})
	}
	return out, nil
}

// isPasskey tells a platform or synced passkey (software-protected in RFC
// 8176's terms: amr swk) from a hardware security key (hwk).
func isPasskey(c webauthn.Credential) bool {
	return c.Authenticator.Attachment == protocol.Platform || c.Flags.BackupEligible
}

// ceremony stores a ceremony's session data and returns its id.
func (s *Service) ceremony(ctx context.Context, user store.User, kind, binding string, sd *webauthn.SessionData) (string, error) {
	data, err := json.Marshal(sd)
	if err != nil {
		return "", err
	}
	id := rand.Text()
	return id, s.Store.CreateWebAuthnCeremony(ctx, store.WebAuthnCeremony{ID: id, UserID: user.ID, Kind: kind,
		Binding: binding, Data: string(data), ExpiresAt: s.Now().Add(ceremonyLifespan)})
}

// consume takes back a ceremony of this user, kind and binding, once.
func (s *Service) consume(ctx context.Context, user store.User, id, kind, binding string) (webauthn.SessionData, error) {
	var sd webauthn.SessionData
	c, err := s.Store.ConsumeWebAuthnCeremony(ctx, id, kind, user.ID, binding, s.Now())
	if errors.Is(err, store.ErrNotFound) {
		return sd, ErrKeyRejected
	} else if err != nil {
		return sd, err
	}
	return sd, json.Unmarshal([]byte(c.Data), &sd)
}

// BeginKeyRegistration starts registering a security key for user; binding
// names the flow or session it belongs to. It returns the ceremony id and
// the options for navigator.credentials.create.
func (s *Service) BeginKeyRegistration(ctx context.Context, user store.User, binding string) (string, json.RawMessage, error) {
	if s.WebAuthn == nil {
		return "", nil, ErrKeysUnavailable
	}
	wu, _, err := s.waUserOf(ctx, user)
	if err != nil {
		return "", nil, err
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range wu.creds {
		exclude = append(exclude, c.Descriptor())
	}
	creation, sd, err := s.WebAuthn.BeginRegistration(wu, webauthn.WithExclusions(exclude))
	if err != nil {
		return "", nil, err
	}
	id, err := s.ceremony(ctx, user, "register", binding, sd)
	if err != nil {
		return "", nil, err
	}
	options, err := json.Marshal(creation)
	return id, options, err
}

// FinishKeyRegistration checks the authenticator's response against the
// stored ceremony and saves the key. When it is the user's first factor,
// backup codes are made too (and returned, to be shown once): backup codes
// exist whenever any factor does.
func (s *Service) FinishKeyRegistration(ctx context.Context, user store.User, ceremonyID, binding, name string,
	response []byte, ev Event) ([]string, error) {
	if s.WebAuthn == nil {
		return nil, ErrKeysUnavailable
	}
	sd, err := s.consume(ctx, user, ceremonyID, "register", binding)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, ErrKeyRejected
	}
	wu, _, err := s.waUserOf(ctx, user)
	if err != nil {
		return nil, err
	}
	cred, err := s.WebAuthn.CreateCredential(wu, sd, parsed)
	if err != nil {
		return nil, ErrKeyRejected
	}
	return s.saveKey(ctx, user, cred, keyName(name, cred), ev)
}

func keyName(name string, c *webauthn.Credential) string {
	// Control and format characters (bidirectional overrides, zero-width
	// joiners) go: the name is shown on pages and in emails, where they
	// could disguise it.
	name = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, name))
	if len([]rune(name)) > maxKeyName {
		name = string([]rune(name)[:maxKeyName])
	}
	if name != "" {
		return name
	}
	if isPasskey(*c) {
		return "Passkey"
	}
	return "Security key"
}

func (s *Service) saveKey(ctx context.Context, user store.User, cred *webauthn.Credential, name string, ev Event) ([]string, error) {
	data, err := json.Marshal(cred)
	if err != nil {
		return nil, err
	}
	first, err := s.Enrolled(ctx, user.ID)
	if err != nil {
		return nil, err
	}
	first = !first
	var codes []string
	var hashes [][]byte
	if first {
		if codes, hashes, err = s.newCodes(user.ID); err != nil {
			return nil, err
		}
	}
	now := s.Now()
	err = s.Store.InTx(ctx, func(ctx context.Context) error {
		row := store.WebAuthnCredential{ID: cred.ID, UserID: user.ID, Name: name, Data: string(data),
			SignCount: cred.Authenticator.SignCount, CreatedAt: now}
		if err := s.Store.CreateWebAuthnCredential(ctx, row); errors.Is(err, store.ErrConflict) {
			return ErrKeyExists
		} else if err != nil {
			return err
		}
		if first {
			if err := s.Store.ReplaceBackupCodes(ctx, user.ID, hashes, now); err != nil {
				return err
			}
		}
		if user.MFAState == store.MFAMustEnroll {
			if err := s.Store.SetMFAState(ctx, user.ID, store.MFANone); err != nil {
				return err
			}
		}
		if err := s.Store.AppendAudit(ctx, s.event("factor.enrolled", user.ID, ev, map[string]string{"factor": MethodSecurityKey, "name": name})); err != nil {
			return err
		}
		return s.mail(ctx, user, "key_added", ev, map[string]any{"Name": name, "First": first, "Again": user.MFAState == store.MFAMustEnroll})
	})
	if err != nil {
		return nil, err
	}
	s.delivered()
	return codes, nil
}

// BeginKeyLogin starts a sign-in with one of the user's keys.
func (s *Service) BeginKeyLogin(ctx context.Context, user store.User, binding string) (string, json.RawMessage, error) {
	if s.WebAuthn == nil {
		return "", nil, ErrKeysUnavailable
	}
	wu, _, err := s.waUserOf(ctx, user)
	if err != nil {
		return "", nil, err
	}
	if len(wu.creds) == 0 {
		return "", nil, ErrNoFactor
	}
	assertion, sd, err := s.WebAuthn.BeginLogin(wu)
	if err != nil {
		return "", nil, err
	}
	id, err := s.ceremony(ctx, user, "login", binding, sd)
	if err != nil {
		return "", nil, err
	}
	options, err := json.Marshal(assertion)
	return id, options, err
}

// FinishKeyLogin verifies a sign-in with a key, under the same per-user
// throttle as codes. The ceremony is consumed first, so an assertion is
// checked against its challenge once; the key's new counter is saved only
// if nothing advanced it meanwhile; a counter that went backwards (a
// possible clone) is refused, audited and mailed.
func (s *Service) FinishKeyLogin(ctx context.Context, user store.User, ceremonyID, binding string, response []byte, ev Event) (Result, error) {
	now := s.Now()
	if err := s.Store.RateLimitAttempt(ctx, userLimitKey(user.ID), s.UserLimit, now); errors.Is(err, store.ErrThrottled) {
		s.audit(ctx, "mfa.throttled", user.ID, ev, nil)
		return Result{}, ErrThrottled
	} else if err != nil {
		return Result{}, err
	}
	res, err := s.verifyKey(ctx, user, ceremonyID, binding, response, ev, now)
	if errors.Is(err, ErrKeyRejected) {
		s.audit(ctx, "mfa.failed", user.ID, ev, map[string]string{"factor": MethodSecurityKey})
		return Result{}, err
	} else if err != nil {
		return Result{}, err
	}
	return res, s.Store.ResetRateLimit(ctx, userLimitKey(user.ID))
}

func (s *Service) verifyKey(ctx context.Context, user store.User, ceremonyID, binding string, response []byte, ev Event, now time.Time) (Result, error) {
	if s.WebAuthn == nil {
		return Result{}, ErrKeyRejected
	}
	sd, err := s.consume(ctx, user, ceremonyID, "login", binding)
	if err != nil {
		return Result{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return Result{}, ErrKeyRejected
	}
	wu, rows, err := s.waUserOf(ctx, user)
	if err != nil {
		return Result{}, err
	}
	cred, err := s.WebAuthn.ValidateLogin(wu, sd, parsed)
	if err != nil {
		return Result{}, ErrKeyRejected
	}
	var row store.WebAuthnCredential
	for _, r := range rows {
		if bytes.Equal(r.ID, cred.ID) {
			row = r
		}
	}
	if cred.Authenticator.CloneWarning {
		s.audit(ctx, "webauthn.clone_warning", user.ID, ev, map[string]string{"name": row.Name})
		_ = s.mail(ctx, user, "key_anomaly", ev, map[string]any{"Name": row.Name})
		s.delivered()
		return Result{}, ErrKeyRejected
	}
	data, err := json.Marshal(cred)
	if err != nil {
		return Result{}, err
	}
	old := row.SignCount
	row.Data, row.SignCount, row.LastUsedAt = string(data), cred.Authenticator.SignCount, now
	if err := s.Store.UseWebAuthnCredential(ctx, row, old); errors.Is(err, store.ErrNotFound) {
		return Result{}, ErrKeyRejected // removed meanwhile, or a racing assertion advanced it
	} else if err != nil {
		return Result{}, err
	}
	if isPasskey(*cred) {
		return Result{Method: MethodPasskey}, nil
	}
	return Result{Method: MethodSecurityKey}, nil
}

// RenameKey names one of the user's keys.
func (s *Service) RenameKey(ctx context.Context, user store.User, id, name string) error {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return ErrNoFactor
	}
	name = keyName(name, &webauthn.Credential{})
	if err := s.Store.RenameWebAuthnCredential(ctx, user.ID, raw, name); errors.Is(err, store.ErrNotFound) {
		return ErrNoFactor
	} else if err != nil {
		return err
	}
	return nil
}

// RemoveKey removes one of the user's keys. Removing the last factor is
// refused while an organization requires 2FA; when no factor remains, the
// backup codes go too.
func (s *Service) RemoveKey(ctx context.Context, user store.User, id string, ev Event) error {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return ErrNoFactor
	}
	err = s.Store.InTx(ctx, func(ctx context.Context) error {
		keys, err := s.Store.ListWebAuthnCredentials(ctx, user.ID)
		if err != nil {
			return err
		}
		var name string
		for _, k := range keys {
			if bytes.Equal(k.ID, raw) {
				name = k.Name
			}
		}
		if name == "" {
			return ErrNoFactor
		}
		factors, err := s.Store.GetFactorSummary(ctx, user.ID)
		if err != nil {
			return err
		}
		last := len(keys) == 1 && !factors.TOTP
		if last && factors.Required {
			return ErrRequired
		}
		if err := s.Store.DeleteWebAuthnCredential(ctx, user.ID, raw); err != nil {
			return err
		}
		if last {
			if err := s.Store.ReplaceBackupCodes(ctx, user.ID, nil, s.Now()); err != nil {
				return err
			}
		}
		if err := s.Store.AppendAudit(ctx, s.event("factor.removed", user.ID, ev, map[string]string{"factor": MethodSecurityKey, "name": name})); err != nil {
			return err
		}
		return s.mail(ctx, user, "key_removed", ev, map[string]any{"Name": name, "Last": last})
	})
	if err == nil {
		s.delivered()
	}
	return err
}
