package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// AppendAudit writes an audit event.
func (db *DB) AppendAudit(ctx context.Context, e AuditEvent) error {
	details, err := auditDetails(e)
	if err != nil {
		return err
	}
	if err := db.insertAudit(ctx, e, details); err != nil {
		return fmt.Errorf("append audit event %s: %w", e.Kind, err)
	}
	db.audited(e)
	return nil
}

// auditInsert is the head of an INSERT of an audit event; $1 to $7 are
// auditArgs.
const auditInsert = `INSERT INTO audit_events (at, kind, actor_id, target_id, org_id, client_addr, details) `

func auditArgs(e AuditEvent, details string) []any {
	return []any{utc(e.At), e.Kind, e.ActorID, e.TargetID, e.OrgID, e.ClientAddr, details}
}

func (db *DB) insertAudit(ctx context.Context, e AuditEvent, details string) error {
	_, err := db.exec(ctx, auditInsert+`VALUES ($1, $2, $3, $4, $5, $6, $7)`, auditArgs(e, details)...)
	return err
}

// auditDetails is e's details column.
func auditDetails(e AuditEvent) (string, error) {
	if len(e.Details) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(e.Details)
	if err != nil {
		return "", fmt.Errorf("encode audit details: %w", err)
	}
	return string(b), nil
}

// audited tells the audit hook of an event written.
func (db *DB) audited(e AuditEvent) {
	if db.onAudit != nil {
		// In a transaction that later rolls back, the event was still
		// attempted: metrics count attempts, the audit log what committed.
		db.onAudit(e)
	}
}

// AuditFilter selects audit events; empty fields match everything.
type AuditFilter struct {
	TargetID string
	OrgID    string
	Kind     string
	Before   time.Time // zero: no bound
	Limit    int       // default 100
}

// ListAudit returns matching events, newest first.
func (db *DB) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	before := f.Before
	if before.IsZero() {
		before = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	rows, err := db.q(ctx).QueryContext(ctx, `SELECT id, at, kind, actor_id, target_id, org_id, client_addr, details
		FROM audit_events
		WHERE ($1 = '' OR target_id = $1) AND ($2 = '' OR org_id = $2) AND ($3 = '' OR kind = $3) AND at < $4
		ORDER BY at DESC, id DESC LIMIT $5`, f.TargetID, f.OrgID, f.Kind, utc(before), f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var details string
		if err := rows.Scan(&e.ID, &e.At, &e.Kind, &e.ActorID, &e.TargetID, &e.OrgID, &e.ClientAddr, &details); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			return nil, fmt.Errorf("decode audit details: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
