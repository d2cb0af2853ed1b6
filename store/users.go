package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

const userColumns = `id, email, email_verified, name, password_hash, mfa_state, created_at, last_login_at`

// qualified prefixes each of columns (a list like userColumns) with a
// table's alias: qualified("u", "id, email") is "u.id, u.email".
func qualified(alias, columns string) string {
	return alias + "." + strings.ReplaceAll(columns, ", ", ", "+alias+".")
}

// scanUser scans userColumns, then the extra columns a query adds after them.
func scanUser(row interface{ Scan(...any) error }, extra ...any) (User, error) {
	var s userScan
	err := row.Scan(append(s.dest(), extra...)...)
	return s.user(), err
}

// userScan holds a row of userColumns while it is scanned.
type userScan struct {
	u         User
	lastLogin sql.NullTime
}

func (s *userScan) dest() []any {
	return []any{&s.u.ID, &s.u.Email, &s.u.EmailVerified, &s.u.Name, &s.u.PasswordHash, &s.u.MFAState, &s.u.CreatedAt, &s.lastLogin}
}

func (s *userScan) user() User {
	u := s.u
	u.LastLoginAt = s.lastLogin.Time
	return u
}

// NormalizeEmail is the form emails are stored and looked up in.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// CreateUser inserts u; the email must be unused (ErrConflict).
func (db *DB) CreateUser(ctx context.Context, u User) error {
	if u.MFAState == "" {
		u.MFAState = MFANone
	}
	_, err := db.exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)`,
		u.ID, NormalizeEmail(u.Email), u.EmailVerified, u.Name, u.PasswordHash, string(u.MFAState), utc(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.Email, err)
	}
	return nil
}

// GetUser returns the user with id.
func (db *DB) GetUser(ctx context.Context, id string) (User, error) {
	u, err := scanUser(db.q(ctx).QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return User{}, fmt.Errorf("get user %s: %w", id, notFound(err))
	}
	return u, nil
}

// GetUserByEmail returns the user with email (any case).
func (db *DB) GetUserByEmail(ctx context.Context, email string) (User, error) {
	u, err := scanUser(db.q(ctx).QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, NormalizeEmail(email)))
	if err != nil {
		return User{}, fmt.Errorf("get user by email: %w", notFound(err))
	}
	return u, nil
}

// SetUserPassword replaces the user's password hash.
func (db *DB) SetUserPassword(ctx context.Context, id, hash string) error {
	if err := db.execOne(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, id, hash); err != nil {
		return fmt.Errorf("set password of user %s: %w", id, err)
	}
	return nil
}

// RecordLogin records a successful sign-in: the user's last sign-in time
// and its audit event e, whose TargetID is the user and At the time. Both
// are written or neither: on PostgreSQL in one statement (a data-modifying
// WITH, so one round trip and one commit), on SQLite in one transaction. It
// fails with ErrNotFound, writing nothing, when the user is gone.
func (db *DB) RecordLogin(ctx context.Context, e AuditEvent) error {
	details, err := auditDetails(e)
	if err != nil {
		return err
	}
	if db.dialect.name == postgresDialect.name {
		err = db.execOne(ctx, `WITH u AS (UPDATE users SET last_login_at = $1 WHERE id = $4 RETURNING id) `+
			auditInsert+`SELECT $1, $2, $3, u.id, $5, $6, $7 FROM u`, auditArgs(e, details)...)
	} else {
		err = db.InTx(ctx, func(ctx context.Context) error {
			if err := db.execOne(ctx, `UPDATE users SET last_login_at = $2 WHERE id = $1`, e.TargetID, utc(e.At)); err != nil {
				return err
			}
			return db.insertAudit(ctx, e, details)
		})
	}
	if err != nil {
		return fmt.Errorf("record login of user %s: %w", e.TargetID, err)
	}
	db.audited(e)
	return nil
}

// CreateOrganization inserts o; the name must be unused (ErrConflict).
func (db *DB) CreateOrganization(ctx context.Context, o Organization) error {
	_, err := db.exec(ctx, `INSERT INTO organizations (id, name, require_2fa, created_at) VALUES ($1, $2, $3, $4)`,
		o.ID, o.Name, o.Require2FA, utc(o.CreatedAt))
	if err != nil {
		return fmt.Errorf("create organization %s: %w", o.Name, err)
	}
	return nil
}

func scanOrganization(row interface{ Scan(...any) error }) (Organization, error) {
	var o Organization
	err := row.Scan(&o.ID, &o.Name, &o.Require2FA, &o.CreatedAt)
	return o, err
}

// GetOrganization returns the organization with id.
func (db *DB) GetOrganization(ctx context.Context, id string) (Organization, error) {
	o, err := scanOrganization(db.q(ctx).QueryRowContext(ctx,
		`SELECT id, name, require_2fa, created_at FROM organizations WHERE id = $1`, id))
	if err != nil {
		return Organization{}, fmt.Errorf("get organization %s: %w", id, notFound(err))
	}
	return o, nil
}

// GetOrganizationByName returns the organization called name.
func (db *DB) GetOrganizationByName(ctx context.Context, name string) (Organization, error) {
	o, err := scanOrganization(db.q(ctx).QueryRowContext(ctx,
		`SELECT id, name, require_2fa, created_at FROM organizations WHERE name = $1`, name))
	if err != nil {
		return Organization{}, fmt.Errorf("get organization %q: %w", name, notFound(err))
	}
	return o, nil
}

// SetOrganizationRequire2FA sets whether the organization requires every
// member to use a second factor.
func (db *DB) SetOrganizationRequire2FA(ctx context.Context, orgID string, require bool) error {
	if err := db.execOne(ctx, `UPDATE organizations SET require_2fa = $2 WHERE id = $1`, orgID, require); err != nil {
		return fmt.Errorf("set 2fa policy of %s: %w", orgID, err)
	}
	return nil
}

// PutMembership adds the user to the organization or changes their role.
func (db *DB) PutMembership(ctx context.Context, m Membership) error {
	_, err := db.exec(ctx, `INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role`,
		m.OrgID, m.UserID, string(m.Role), utc(m.CreatedAt))
	if err != nil {
		return fmt.Errorf("put membership of %s in %s: %w", m.UserID, m.OrgID, err)
	}
	return nil
}

// ListUserMemberships returns the organizations the user belongs to.
func (db *DB) ListUserMemberships(ctx context.Context, userID string) ([]Membership, error) {
	rows, err := db.q(ctx).QueryContext(ctx,
		`SELECT org_id, user_id, role, created_at FROM memberships WHERE user_id = $1 ORDER BY created_at, org_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list memberships of %s: %w", userID, err)
	}
	defer rows.Close()
	var ms []Membership
	for rows.Next() {
		var m Membership
		if err := rows.Scan(&m.OrgID, &m.UserID, &m.Role, &m.CreatedAt); err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}
