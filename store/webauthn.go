package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// WebAuthnCredential is a registered security key or passkey.
type WebAuthnCredential struct {
	ID     []byte
	UserID string
	Name   string
	// Data is the library's credential record (JSON).
	Data       string
	SignCount  uint32
	CreatedAt  time.Time
	LastUsedAt time.Time // zero if never used to sign in
}

// WebAuthnCeremony is a registration or sign-in in progress.
type WebAuthnCeremony struct {
	ID     string
	UserID string
	Kind   string // "register" or "login"
	// Binding names the login flow or session that began it.
	Binding   string
	Data      string // the library's session data (JSON)
	ExpiresAt time.Time
}

const webauthnColumns = `id, user_id, name, data, sign_count, created_at, last_used_at`

func scanWebAuthn(row interface{ Scan(...any) error }) (WebAuthnCredential, error) {
	var c WebAuthnCredential
	var used sql.NullTime
	var count int64
	err := row.Scan(&c.ID, &c.UserID, &c.Name, &c.Data, &count, &c.CreatedAt, &used)
	c.SignCount, c.LastUsedAt = uint32(count), used.Time
	return c, err
}

// CreateWebAuthnCredential stores a new credential; a credential id
// registered before (to anyone) is ErrConflict.
func (db *DB) CreateWebAuthnCredential(ctx context.Context, c WebAuthnCredential) error {
	_, err := db.exec(ctx, `INSERT INTO webauthn_credentials (`+webauthnColumns+`) VALUES ($1, $2, $3, $4, $5, $6, NULL)`,
		c.ID, c.UserID, c.Name, c.Data, int64(c.SignCount), utc(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("create webauthn credential for %s: %w", c.UserID, err)
	}
	return nil
}

// ListWebAuthnCredentials returns the user's credentials, oldest first.
func (db *DB) ListWebAuthnCredentials(ctx context.Context, userID string) ([]WebAuthnCredential, error) {
	rows, err := db.q(ctx).QueryContext(ctx, `SELECT `+webauthnColumns+` FROM webauthn_credentials
		WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list webauthn credentials of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []WebAuthnCredential
	for rows.Next() {
		c, err := scanWebAuthn(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UseWebAuthnCredential records a sign-in with the credential: its new
// record, counter and last use. The write is conditional on the counter
// still being the one the assertion was checked against (oldCount), so of
// two racing assertions only one advances it.
func (db *DB) UseWebAuthnCredential(ctx context.Context, c WebAuthnCredential, oldCount uint32) error {
	err := db.execOne(ctx, `UPDATE webauthn_credentials SET data = $3, sign_count = $4, last_used_at = $5
		WHERE id = $1 AND user_id = $2 AND sign_count = $6`,
		c.ID, c.UserID, c.Data, int64(c.SignCount), utc(c.LastUsedAt), int64(oldCount))
	if err != nil {
		return fmt.Errorf("record use of webauthn credential: %w", err)
	}
	return nil
}

// RenameWebAuthnCredential names the user's credential.
func (db *DB) RenameWebAuthnCredential(ctx context.Context, userID string, id []byte, name string) error {
	if err := db.execOne(ctx, `UPDATE webauthn_credentials SET name = $3 WHERE id = $1 AND user_id = $2`, id, userID, name); err != nil {
		return fmt.Errorf("rename webauthn credential: %w", err)
	}
	return nil
}

// DeleteWebAuthnCredential removes the user's credential.
func (db *DB) DeleteWebAuthnCredential(ctx context.Context, userID string, id []byte) error {
	if err := db.execOne(ctx, `DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2`, id, userID); err != nil {
		return fmt.Errorf("delete webauthn credential: %w", err)
	}
	return nil
}

// CreateWebAuthnCeremony stores a ceremony in progress.
func (db *DB) CreateWebAuthnCeremony(ctx context.Context, c WebAuthnCeremony) error {
	_, err := db.exec(ctx, `INSERT INTO webauthn_ceremonies (id, user_id, kind, binding, data, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		c.ID, c.UserID, c.Kind, c.Binding, c.Data, utc(c.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create webauthn ceremony: %w", err)
	}
	return nil
}

// ConsumeWebAuthnCeremony deletes and returns the ceremony if it is of
// kind, for user, bound to binding and unexpired at now: one conditional
// write, so a challenge is answered at most once. ErrNotFound otherwise.
func (db *DB) ConsumeWebAuthnCeremony(ctx context.Context, id, kind, userID, binding string, now time.Time) (WebAuthnCeremony, error) {
	c := WebAuthnCeremony{ID: id, Kind: kind, UserID: userID, Binding: binding}
	err := db.q(ctx).QueryRowContext(ctx, `DELETE FROM webauthn_ceremonies
		WHERE id = $1 AND kind = $2 AND user_id = $3 AND binding = $4 AND expires_at > $5 RETURNING data, expires_at`,
		id, kind, userID, binding, utc(now)).Scan(&c.Data, &c.ExpiresAt)
	if err != nil {
		return WebAuthnCeremony{}, fmt.Errorf("consume webauthn ceremony: %w", notFound(err))
	}
	return c, nil
}
