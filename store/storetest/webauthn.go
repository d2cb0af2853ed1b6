package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
)

func testWebAuthnCredentials(t *testing.T, db *store.DB) {
	u := newUser(t, db, "keys@example.com")
	other := newUser(t, db, "other-keys@example.com")
	c := store.WebAuthnCredential{ID: []byte{1, 2, 3}, UserID: u.ID, Name: "YubiKey", Data: `{"id":"AQID"}`, SignCount: 5, CreatedAt: t0}
	must(t, db.CreateWebAuthnCredential(ctx, c), "create")
	if has, err := db.HasSecondFactor(ctx, u.ID); err != nil || !has {
		t.Fatalf("HasSecondFactor with a key = %v, %v", has, err)
	}
	dup := c
	dup.UserID = other.ID
	if err := db.CreateWebAuthnCredential(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a credential id registered twice: %v", err)
	}
	must(t, db.CreateWebAuthnCredential(ctx, store.WebAuthnCredential{ID: []byte{9}, UserID: u.ID, Name: "Phone", Data: "{}", CreatedAt: t0.Add(time.Second)}), "second")
	list, err := db.ListWebAuthnCredentials(ctx, u.ID)
	must(t, err, "list")
	if len(list) != 2 || list[0].Name != "YubiKey" || list[0].SignCount != 5 || !list[0].LastUsedAt.IsZero() {
		t.Fatalf("list = %+v", list)
	}
	used := c
	used.SignCount, used.Data, used.LastUsedAt = 6, `{"n":6}`, t0.Add(time.Hour)
	must(t, db.UseWebAuthnCredential(ctx, used, 5), "use")
	// A racing use checked against the old counter does not overwrite.
	if err := db.UseWebAuthnCredential(ctx, used, 5); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("stale counter update: %v", err)
	}
	list, _ = db.ListWebAuthnCredentials(ctx, u.ID)
	if list[0].SignCount != 6 || list[0].Data != `{"n":6}` || !list[0].LastUsedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after use = %+v", list[0])
	}
	must(t, db.RenameWebAuthnCredential(ctx, u.ID, c.ID, "Blue key"), "rename")
	if err := db.RenameWebAuthnCredential(ctx, other.ID, c.ID, "stolen"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("renaming another user's key: %v", err)
	}
	if err := db.DeleteWebAuthnCredential(ctx, other.ID, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting another user's key: %v", err)
	}
	must(t, db.DeleteWebAuthnCredential(ctx, u.ID, c.ID), "delete")
	if list, _ := db.ListWebAuthnCredentials(ctx, u.ID); len(list) != 1 || list[0].Name != "Phone" {
		t.Fatalf("after delete = %+v", list)
	}
	if n, _ := db.DeleteSecondFactors(ctx, u.ID); n != 1 {
		t.Fatalf("DeleteSecondFactors removed %d rows, want the remaining key", n)
	}
}

func testWebAuthnCeremonies(t *testing.T, db *store.DB) {
	u := newUser(t, db, "ceremony@example.com")
	c := store.WebAuthnCeremony{ID: "c1", UserID: u.ID, Kind: "login", Binding: "flow:f1", Data: `{"challenge":"x"}`, ExpiresAt: t0.Add(5 * time.Minute)}
	must(t, db.CreateWebAuthnCeremony(ctx, c), "create")
	for name, tc := range map[string]struct{ kind, user, binding string }{
		"other kind":    {"register", u.ID, "flow:f1"},
		"other user":    {"login", "u-nobody", "flow:f1"},
		"other binding": {"login", u.ID, "flow:f2"},
	} {
		if _, err := db.ConsumeWebAuthnCeremony(ctx, "c1", tc.kind, tc.user, tc.binding, t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := db.ConsumeWebAuthnCeremony(ctx, "c1", "login", u.ID, "flow:f1", t0.Add(5*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired ceremony: %v", err)
	}
	ok, _ := concurrently(10, func(int) error {
		_, err := db.ConsumeWebAuthnCeremony(ctx, "c1", "login", u.ID, "flow:f1", t0)
		return err
	})
	if ok != 1 {
		t.Fatalf("%d of 10 concurrent consumptions succeeded, want 1", ok)
	}
}
