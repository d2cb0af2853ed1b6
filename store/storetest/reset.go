package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
)

func testResetTokens(t *testing.T, db *store.DB) {
	u := newUser(t, db, "reset@example.com")
	tok := func(h string, at time.Time) store.ResetToken {
		return store.ResetToken{Hash: []byte(h), UserID: u.ID, ActorID: "owner", CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour)}
	}
	must(t, db.CreateResetToken(ctx, tok("first", t0)), "first link")
	must(t, db.SetResetTokenMail(ctx, []byte("first"), 42), "mail id")
	must(t, db.CreateResetToken(ctx, tok("second", t0.Add(time.Minute))), "second link")
	first, err := db.GetResetToken(ctx, []byte("first"))
	must(t, err, "get first")
	if !first.SupersededAt.Equal(t0.Add(time.Minute)) || first.MailID != 42 || first.ActorID != "owner" {
		t.Fatalf("first link after the second = %+v", first)
	}
	if _, err := db.ConsumeResetToken(ctx, []byte("first"), t0.Add(2*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("superseded link consumed: %v", err)
	}
	if _, err := db.ConsumeResetToken(ctx, []byte("second"), t0.Add(25*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired link consumed: %v", err)
	}
	latest, err := db.LatestResetToken(ctx, u.ID)
	must(t, err, "latest")
	if string(latest.Hash) != "second" {
		t.Fatalf("latest = %s", latest.Hash)
	}
	ok, _ := concurrently(10, func(int) error {
		_, err := db.ConsumeResetToken(ctx, []byte("second"), t0.Add(time.Hour))
		return err
	})
	if ok != 1 {
		t.Fatalf("%d of 10 concurrent confirmations succeeded, want 1", ok)
	}
	used, _ := db.GetResetToken(ctx, []byte("second"))
	if !used.UsedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("used link = %+v", used)
	}
}

// testConcurrentResets: two resets of one user at once, each locking the
// user first, leave exactly one live link.
func testConcurrentResets(t *testing.T, db *store.DB) {
	u := newUser(t, db, "twice@example.com")
	ok, errs := concurrently(2, func(i int) error {
		return db.InTx(ctx, func(ctx context.Context) error {
			if err := db.LockUser(ctx, u.ID); err != nil {
				return err
			}
			return db.CreateResetToken(ctx, store.ResetToken{Hash: []byte(fmt.Sprint("link-", i)), UserID: u.ID,
				CreatedAt: t0.Add(time.Duration(i) * time.Second), ExpiresAt: t0.Add(time.Hour)})
		})
	})
	if ok != 2 {
		t.Fatalf("concurrent resets: %d succeeded (%v), want both", ok, errs)
	}
	live := 0
	for i := range 2 {
		tok, err := db.GetResetToken(ctx, []byte(fmt.Sprint("link-", i)))
		must(t, err, "get link")
		if tok.SupersededAt.IsZero() {
			live++
		}
	}
	if live != 1 {
		t.Fatalf("%d live links after two concurrent resets, want 1", live)
	}
	if err := db.LockUser(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("lock missing user: %v", err)
	}
}

func testOrgMembers(t *testing.T, db *store.DB) {
	owner := newUser(t, db, "o@example.com")
	member := newUser(t, db, "m@example.com")
	must(t, db.CreateOrganization(ctx, store.Organization{ID: "org", Name: "Org", CreatedAt: t0}), "org")
	must(t, db.CreateOrganization(ctx, store.Organization{ID: "other", Name: "Another", CreatedAt: t0}), "org")
	must(t, db.PutMembership(ctx, store.Membership{OrgID: "org", UserID: owner.ID, Role: store.RoleOwner, CreatedAt: t0}), "owner")
	must(t, db.PutMembership(ctx, store.Membership{OrgID: "org", UserID: member.ID, Role: store.RoleMember, CreatedAt: t0}), "member")
	must(t, db.PutMembership(ctx, store.Membership{OrgID: "other", UserID: member.ID, Role: store.RoleOwner, CreatedAt: t0}), "member")
	must(t, db.PutTOTPEnrollment(ctx, store.TOTPEnrollment{UserID: member.ID, SealedSecret: []byte("s"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}), "enroll")
	must(t, db.ConfirmTOTP(ctx, store.TOTPCredential{UserID: member.ID, SealedSecret: []byte("s"), CreatedAt: t0}, [][]byte{{1}, {2}}), "confirm")
	must(t, db.RecordLogin(ctx, loginEvent(member.ID, t0.Add(time.Hour))), "login")

	ms, err := db.ListOrgMembers(ctx, "org")
	must(t, err, "list members")
	if len(ms) != 2 || ms[0].User.ID != member.ID || ms[1].User.ID != owner.ID {
		t.Fatalf("members = %+v", ms)
	}
	if m := ms[0]; m.Role != store.RoleMember || !m.TOTP || m.BackupCodes != 2 || !m.User.LastLoginAt.Equal(t0.Add(time.Hour)) || !m.User.CreatedAt.Equal(t0.Truncate(time.Microsecond)) {
		t.Fatalf("member = %+v", m)
	}
	if o := ms[1]; o.Role != store.RoleOwner || o.TOTP || o.BackupCodes != 0 {
		t.Fatalf("owner = %+v", o)
	}
	mem, err := db.GetMembership(ctx, "other", member.ID)
	must(t, err, "membership")
	if mem.Role != store.RoleOwner {
		t.Fatalf("membership = %+v", mem)
	}
	if _, err := db.GetMembership(ctx, "other", owner.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("non-member: %v", err)
	}
	orgs, err := db.ListUserOrganizations(ctx, member.ID)
	must(t, err, "user orgs")
	if len(orgs) != 2 || orgs[0].Org.Name != "Another" || orgs[0].Role != store.RoleOwner || orgs[1].Org.ID != "org" {
		t.Fatalf("orgs = %+v", orgs)
	}
}
