package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ResetToken is an owner-initiated 2FA reset's re-enrollment link. Only a
// keyed hash of the token is stored.
type ResetToken struct {
	Hash      []byte
	UserID    string
	ActorID   string // the owner's user id, or "operator"
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt and SupersededAt are zero while the link is live.
	UsedAt       time.Time
	SupersededAt time.Time
	// MailID is the outbox message that carries the link.
	MailID int64
}

// LockUser locks the user's row until the transaction in ctx ends, so that
// operations on one user (two owners resetting them at once) run one after
// the other. SQLite's write transactions are serialized already.
func (db *DB) LockUser(ctx context.Context, id string) error {
	var got string
	err := db.q(ctx).QueryRowContext(ctx, `SELECT id FROM users WHERE id = $1`+db.dialect.forUpdate, id).Scan(&got)
	if err != nil {
		return fmt.Errorf("lock user %s: %w", id, notFound(err))
	}
	return nil
}

// CreateResetToken stores t as the user's one live link; any earlier live
// link is superseded at t.CreatedAt.
func (db *DB) CreateResetToken(ctx context.Context, t ResetToken) error {
	return db.InTx(ctx, func(ctx context.Context) error {
		if _, err := db.exec(ctx, `UPDATE reset_tokens SET superseded_at = $2
			WHERE user_id = $1 AND used_at IS NULL AND superseded_at IS NULL`, t.UserID, utc(t.CreatedAt)); err != nil {
			return fmt.Errorf("supersede reset tokens of %s: %w", t.UserID, err)
		}
		if _, err := db.exec(ctx, `INSERT INTO reset_tokens (token_hash, user_id, actor_id, created_at, expires_at, mail_id)
			VALUES ($1, $2, $3, $4, $5, $6)`, t.Hash, t.UserID, t.ActorID, utc(t.CreatedAt), utc(t.ExpiresAt), sql.NullInt64{Int64: t.MailID, Valid: t.MailID != 0}); err != nil {
			return fmt.Errorf("create reset token for %s: %w", t.UserID, err)
		}
		return nil
	})
}

// SetResetTokenMail records which outbox message carries the link.
func (db *DB) SetResetTokenMail(ctx context.Context, hash []byte, mailID int64) error {
	return db.execOne(ctx, `UPDATE reset_tokens SET mail_id = $2 WHERE token_hash = $1`, hash, mailID)
}

const resetColumns = `token_hash, user_id, actor_id, created_at, expires_at, used_at, superseded_at, mail_id`

func scanReset(row interface{ Scan(...any) error }) (ResetToken, error) {
	var t ResetToken
	var used, superseded sql.NullTime
	var mail sql.NullInt64
	err := row.Scan(&t.Hash, &t.UserID, &t.ActorID, &t.CreatedAt, &t.ExpiresAt, &used, &superseded, &mail)
	t.UsedAt, t.SupersededAt, t.MailID = used.Time, superseded.Time, mail.Int64
	return t, err
}

// GetResetToken returns the token with hash, whatever its state.
func (db *DB) GetResetToken(ctx context.Context, hash []byte) (ResetToken, error) {
	t, err := scanReset(db.q(ctx).QueryRowContext(ctx, `SELECT `+resetColumns+` FROM reset_tokens WHERE token_hash = $1`, hash))
	if err != nil {
		return ResetToken{}, fmt.Errorf("get reset token: %w", notFound(err))
	}
	return t, nil
}

// LatestResetToken returns the newest link issued for the user.
func (db *DB) LatestResetToken(ctx context.Context, userID string) (ResetToken, error) {
	t, err := scanReset(db.q(ctx).QueryRowContext(ctx, `SELECT `+resetColumns+` FROM reset_tokens
		WHERE user_id = $1 ORDER BY created_at DESC LIMIT 1`, userID))
	if err != nil {
		return ResetToken{}, fmt.Errorf("latest reset token of %s: %w", userID, notFound(err))
	}
	return t, nil
}

// ConsumeResetToken spends a live, unexpired link, in one conditional
// write: of many concurrent confirmations exactly one succeeds, the others
// get ErrNotFound.
func (db *DB) ConsumeResetToken(ctx context.Context, hash []byte, now time.Time) (ResetToken, error) {
	t, err := scanReset(db.q(ctx).QueryRowContext(ctx, `UPDATE reset_tokens SET used_at = $2
		WHERE token_hash = $1 AND used_at IS NULL AND superseded_at IS NULL AND expires_at > $2
		RETURNING `+resetColumns, hash, utc(now)))
	if err != nil {
		return ResetToken{}, fmt.Errorf("consume reset token: %w", notFound(err))
	}
	return t, nil
}

// MemberInfo is one member of an organization as the owner console lists
// them.
type MemberInfo struct {
	User        User
	Role        Role
	TOTP        bool
	BackupCodes int
	Keys        int // security keys and passkeys
}

// ListOrgMembers returns the organization's members, by email.
func (db *DB) ListOrgMembers(ctx context.Context, orgID string) ([]MemberInfo, error) {
	rows, err := db.q(ctx).QueryContext(ctx, `SELECT `+prefixed("u.", userColumns)+`, m.role,
			EXISTS (SELECT 1 FROM totp_credentials t WHERE t.user_id = u.id),
			(SELECT COUNT(*) FROM backup_codes b WHERE b.user_id = u.id AND b.used_at IS NULL),
			(SELECT COUNT(*) FROM webauthn_credentials w WHERE w.user_id = u.id)
		FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 ORDER BY u.email`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list members of %s: %w", orgID, err)
	}
	defer rows.Close()
	var out []MemberInfo
	for rows.Next() {
		var m MemberInfo
		var lastLogin sql.NullTime
		u := &m.User
		if err := rows.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.Name, &u.PasswordHash, &u.MFAState, &u.CreatedAt,
			&lastLogin, &m.Role, &m.TOTP, &m.BackupCodes, &m.Keys); err != nil {
			return nil, err
		}
		u.LastLoginAt = lastLogin.Time
		out = append(out, m)
	}
	return out, rows.Err()
}

// GetMembership returns the user's membership of the organization.
func (db *DB) GetMembership(ctx context.Context, orgID, userID string) (Membership, error) {
	m := Membership{OrgID: orgID, UserID: userID}
	err := db.q(ctx).QueryRowContext(ctx, `SELECT role, created_at FROM memberships WHERE org_id = $1 AND user_id = $2`,
		orgID, userID).Scan(&m.Role, &m.CreatedAt)
	if err != nil {
		return Membership{}, fmt.Errorf("membership of %s in %s: %w", userID, orgID, notFound(err))
	}
	return m, nil
}

// OrgMembership is an organization and the user's role in it.
type OrgMembership struct {
	Org  Organization
	Role Role
}

// ListUserOrganizations returns the organizations the user belongs to, by
// name, with their role.
func (db *DB) ListUserOrganizations(ctx context.Context, userID string) ([]OrgMembership, error) {
	rows, err := db.q(ctx).QueryContext(ctx, `SELECT o.id, o.name, o.require_2fa, o.created_at, m.role
		FROM memberships m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.name`, userID)
	if err != nil {
		return nil, fmt.Errorf("organizations of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []OrgMembership
	for rows.Next() {
		var om OrgMembership
		if err := rows.Scan(&om.Org.ID, &om.Org.Name, &om.Org.Require2FA, &om.Org.CreatedAt, &om.Role); err != nil {
			return nil, err
		}
		out = append(out, om)
	}
	return out, rows.Err()
}
