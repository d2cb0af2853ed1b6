package mfa

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// signIn begins a sign-in bound to begin, lets k answer it as a browser
// at rp, moves the clock by wait and finishes it from finish.
func (f *fixture) signIn(t *testing.T, k *softKey, begin, finish string, rp virtualwebauthn.RelyingParty, wait time.Duration) error {
	t.Helper()
	id, options, err := f.s.BeginKeyLogin(ctx, f.user, begin)
	if err != nil {
		t.Fatal(err)
	}
	resp := k.get(t, rp, options)
	f.clock.advance(wait)
	_, err = f.s.FinishKeyLogin(ctx, f.user, id, finish, resp, Event{ClientAddr: "192.0.2.9"})
	return err
}

// TestKeySignInRefused: each way an assertion can be wrong is refused
// with ErrKeyRejected, audited as a failure, and changes nothing: the
// key's counter, record and last use stay as they were; and the key
// still signs in afterwards.
func TestKeySignInRefused(t *testing.T) {
	tests := []struct {
		name    string
		attempt func(t *testing.T, f *fixture, k *softKey) error
	}{
		{"wrong origin", func(t *testing.T, f *fixture, k *softKey) error {
			return f.signIn(t, k, "flow:f", "flow:f", virtualwebauthn.RelyingParty{ID: testRPID, Origin: "http://evil.example:8080"}, 0)
		}},
		{"same host, other port", func(t *testing.T, f *fixture, k *softKey) error {
			return f.signIn(t, k, "flow:f", "flow:f", virtualwebauthn.RelyingParty{ID: testRPID, Origin: "http://localhost:9090"}, 0)
		}},
		{"wrong RP id", func(t *testing.T, f *fixture, k *softKey) error {
			return f.signIn(t, k, "flow:f", "flow:f", virtualwebauthn.RelyingParty{ID: "evil.example", Origin: testOrigin}, 0)
		}},
		{"expired ceremony", func(t *testing.T, f *fixture, k *softKey) error {
			return f.signIn(t, k, "flow:f", "flow:f", goodRP, ceremonyLifespan+time.Second)
		}},
		{"ceremony of another flow", func(t *testing.T, f *fixture, k *softKey) error {
			return f.signIn(t, k, "flow:f", "flow:g", goodRP, 0)
		}},
		{"a flow's ceremony from a session", func(t *testing.T, f *fixture, k *softKey) error {
			return f.signIn(t, k, "flow:f", "session:f", goodRP, 0)
		}},
		{"wrong challenge", func(t *testing.T, f *fixture, k *softKey) error {
			_, optionsA, _ := f.s.BeginKeyLogin(ctx, f.user, "flow:f")
			idB, _, _ := f.s.BeginKeyLogin(ctx, f.user, "flow:f")
			_, err := f.s.FinishKeyLogin(ctx, f.user, idB, "flow:f", k.get(t, goodRP, optionsA), Event{})
			return err
		}},
		{"a registration ceremony", func(t *testing.T, f *fixture, k *softKey) error {
			id, _, _ := f.s.BeginKeyRegistration(ctx, f.user, "flow:f")
			_, options, _ := f.s.BeginKeyLogin(ctx, f.user, "flow:f")
			_, err := f.s.FinishKeyLogin(ctx, f.user, id, "flow:f", k.get(t, goodRP, options), Event{})
			return err
		}},
		{"signature over another challenge", func(t *testing.T, f *fixture, k *softKey) error {
			id, options, _ := f.s.BeginKeyLogin(ctx, f.user, "flow:f")
			_, other, _ := f.s.BeginKeyLogin(ctx, f.user, "flow:f")
			var good, forged map[string]map[string]any
			_ = json.Unmarshal(k.get(t, goodRP, options), &good)
			_ = json.Unmarshal(k.get(t, goodRP, other), &forged)
			good["response"]["signature"] = forged["response"]["signature"]
			resp, _ := json.Marshal(good)
			_, err := f.s.FinishKeyLogin(ctx, f.user, id, "flow:f", resp, Event{})
			return err
		}},
		{"user handle of another account", func(t *testing.T, f *fixture, k *softKey) error {
			other := *k
			other.auth.Options.UserHandle = []byte("someone-else")
			return f.signIn(t, &other, "flow:f", "flow:f", goodRP, 0)
		}},
		{"ceremony and key of another account", func(t *testing.T, f *fixture, k *softKey) error {
			mallory := store.User{ID: "u-mallory", Email: "mallory@example.com", PasswordHash: "x", CreatedAt: f.clock.t, MFAState: store.MFANone}
			if err := f.db.CreateUser(ctx, mallory); err != nil {
				t.Fatal(err)
			}
			theirs := newSoftKey(virtualwebauthn.AuthenticatorOptions{})
			f.addKeyFor(t, mallory, theirs, "")
			id, options, _ := f.s.BeginKeyLogin(ctx, mallory, "flow:f")
			_, err := f.s.FinishKeyLogin(ctx, f.user, id, "flow:f", theirs.get(t, goodRP, options), Event{})
			return err
		}},
		{"not an assertion", func(t *testing.T, f *fixture, k *softKey) error {
			id, _, _ := f.s.BeginKeyLogin(ctx, f.user, "flow:f")
			_, err := f.s.FinishKeyLogin(ctx, f.user, id, "flow:f", []byte(`{"type":"public-key"`), Event{})
			return err
		}},
	}
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := newKeyFixture(t, b.Open(t))
				k := newSoftKey(virtualwebauthn.AuthenticatorOptions{})
				f.addKey(t, k, "Blue key")
				if _, err := f.keyLogin(t, k, "flow:setup"); err != nil {
					t.Fatal(err)
				}
				f.clock.advance(time.Minute)
				before := f.keyRow(t, k)
				if err := tt.attempt(t, f, k); !errors.Is(err, ErrKeyRejected) {
					t.Fatalf("err = %v, want ErrKeyRejected", err)
				}
				if after := f.keyRow(t, k); after.SignCount != before.SignCount || after.Data != before.Data || !after.LastUsedAt.Equal(before.LastUsedAt) {
					t.Fatalf("a refused assertion changed the key: %+v, was %+v", after, before)
				}
				if n := count(f.auditKinds(t), "mfa.failed"); n != 1 {
					t.Fatalf("%d mfa.failed events, want 1", n)
				}
				if res, err := f.keyLogin(t, k, "flow:later"); err != nil || res.Method != MethodSecurityKey {
					t.Fatalf("the key after a refusal: %+v, %v", res, err)
				}
			})
		}
	})
}

// TestKeyReplay: an assertion is good once. Posted again to its ceremony
// (consumed) or to a new one (another challenge), it is refused and the
// key is unchanged.
func TestKeyReplay(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		f := newKeyFixture(t, b.Open(t))
		k := newSoftKey(virtualwebauthn.AuthenticatorOptions{})
		f.addKey(t, k, "")
		id, options, _ := f.s.BeginKeyLogin(ctx, f.user, "flow:f")
		resp := k.get(t, goodRP, options)
		if _, err := f.s.FinishKeyLogin(ctx, f.user, id, "flow:f", resp, Event{}); err != nil {
			t.Fatal(err)
		}
		f.clock.advance(time.Second)
		used := f.keyRow(t, k)
		if _, err := f.s.FinishKeyLogin(ctx, f.user, id, "flow:f", resp, Event{}); !errors.Is(err, ErrKeyRejected) {
			t.Fatalf("replayed to its ceremony: %v", err)
		}
		fresh, _, _ := f.s.BeginKeyLogin(ctx, f.user, "flow:f")
		if _, err := f.s.FinishKeyLogin(ctx, f.user, fresh, "flow:f", resp, Event{}); !errors.Is(err, ErrKeyRejected) {
			t.Fatalf("replayed to a new ceremony: %v", err)
		}
		if after := f.keyRow(t, k); after.SignCount != used.SignCount || !after.LastUsedAt.Equal(used.LastUsedAt) {
			t.Fatalf("a replay changed the key: %+v", after)
		}
	})
}

// TestKeyCeremonyBinding: a ceremony begun in one flow is refused from
// another, and that stray attempt does not spend it: the flow that began
// it still completes.
func TestKeyCeremonyBinding(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		f := newKeyFixture(t, b.Open(t))
		k := newSoftKey(virtualwebauthn.AuthenticatorOptions{})
		f.addKey(t, k, "")
		id, options, _ := f.s.BeginKeyLogin(ctx, f.user, FlowBinding("a"))
		resp := k.get(t, goodRP, options)
		for _, other := range []string{FlowBinding("b"), "session:a", ""} {
			if _, err := f.s.FinishKeyLogin(ctx, f.user, id, other, resp, Event{}); !errors.Is(err, ErrKeyRejected) {
				t.Fatalf("from %q: %v", other, err)
			}
		}
		if row := f.keyRow(t, k); row.SignCount != 0 || !row.LastUsedAt.IsZero() {
			t.Fatalf("refused attempts used the key: %+v", row)
		}
		if res, err := f.s.FinishKeyLogin(ctx, f.user, id, FlowBinding("a"), resp, Event{}); err != nil || res.Method != MethodSecurityKey {
			t.Fatalf("from its own flow: %+v, %v", res, err)
		}
	})
}

// TestKeyRemovedRefused: a key removed while a sign-in was under way is
// refused, and no longer offered; the user's other key still works.
func TestKeyRemovedRefused(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		f := newKeyFixture(t, b.Open(t))
		lost, kept := newSoftKey(virtualwebauthn.AuthenticatorOptions{}), newSoftKey(virtualwebauthn.AuthenticatorOptions{})
		f.addKey(t, lost, "Lost key")
		f.addKey(t, kept, "Kept key")
		id, options, _ := f.s.BeginKeyLogin(ctx, f.user, "flow:f")
		resp := lost.get(t, goodRP, options)
		if err := f.s.RemoveKey(ctx, f.user, base64.RawURLEncoding.EncodeToString(lost.cred.ID), Event{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.FinishKeyLogin(ctx, f.user, id, "flow:f", resp, Event{}); !errors.Is(err, ErrKeyRejected) {
			t.Fatalf("removed key: %v", err)
		}
		_, options, _ = f.s.BeginKeyLogin(ctx, f.user, "flow:f")
		parsed, _ := virtualwebauthn.ParseAssertionOptions(string(options))
		if lost.cred.IsAllowedForAssertion(*parsed) || !kept.cred.IsAllowedForAssertion(*parsed) {
			t.Fatalf("allowCredentials after removal = %v", parsed.AllowCredentials)
		}
		if res, err := f.keyLogin(t, kept, "flow:g"); err != nil || res.Method != MethodSecurityKey {
			t.Fatalf("the other key: %+v, %v", res, err)
		}
	})
}

// TestKeyCounterBackwards: a counter that does not move forward (a cloned
// key) is refused, audited as webauthn.clone_warning and mailed as
// key_anomaly; the stored counter stays. A key without a counter (always
// 0) keeps working.
func TestKeyCounterBackwards(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		f := newKeyFixture(t, b.Open(t))
		k := newSoftKey(virtualwebauthn.AuthenticatorOptions{})
		f.addKey(t, k, "Blue key")
		k.cred.Counter = 4
		if _, err := f.keyLogin(t, k, "flow:f"); err != nil {
			t.Fatal(err)
		}
		good := f.keyRow(t, k)
		if good.SignCount != 5 {
			t.Fatalf("sign count %d, want 5", good.SignCount)
		}
		f.clock.advance(time.Minute)
		for _, counter := range []uint32{2, 4} { // sends 3 (backwards), then 5 (the same again)
			k.cred.Counter = counter
			if _, err := f.keyLogin(t, k, "flow:g"); !errors.Is(err, ErrKeyRejected) {
				t.Fatalf("counter %d after 5: %v", counter+1, err)
			}
		}
		if row := f.keyRow(t, k); row.SignCount != 5 || !row.LastUsedAt.Equal(good.LastUsedAt) || row.Data != good.Data {
			t.Fatalf("after a clone warning the key is %+v, want %+v", row, good)
		}
		evs, err := f.db.ListAudit(ctx, store.AuditFilter{TargetID: f.user.ID, Kind: "webauthn.clone_warning"})
		if err != nil || len(evs) != 2 || evs[0].Details["name"] != "Blue key" {
			t.Fatalf("clone warnings = %+v, %v", evs, err)
		}
		if n := count(f.mails(t), "A sign-in with your security key was refused"); n != 2 {
			t.Fatalf("%d key_anomaly mails in %q, want 2", n, f.mails(t))
		}

		// A key that never counts (some passkeys send 0) is no clone.
		zero := newSoftKey(virtualwebauthn.AuthenticatorOptions{})
		zero.fixedCounter = true
		f.addKey(t, zero, "")
		for i := range 2 {
			if _, err := f.keyLogin(t, zero, "flow:z"); err != nil {
				t.Fatalf("counterless key, sign-in %d: %v", i+1, err)
			}
		}
	})
}

// TestRemoveAndRenameKeys: removing the last factor while an organization
// requires 2FA is refused and changes nothing; otherwise a key goes with
// a mail and an audit event, and the last one takes the backup codes with
// it. Renaming touches only one's own keys.
func TestRemoveAndRenameKeys(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		f := newKeyFixture(t, b.Open(t))
		now := f.clock.t
		if err := f.db.CreateOrganization(ctx, store.Organization{ID: "org-strict", Name: "Strict", Require2FA: true, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := f.db.PutMembership(ctx, store.Membership{OrgID: "org-strict", UserID: f.user.ID, Role: store.RoleMember, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		first := newSoftKey(virtualwebauthn.AuthenticatorOptions{})
		f.addKey(t, first, "First")
		keys, _ := f.s.Keys(ctx, f.user.ID)
		mails, audit := len(f.mails(t)), len(f.auditKinds(t))
		if err := f.s.RemoveKey(ctx, f.user, keys[0].ID, Event{}); !errors.Is(err, ErrRequired) {
			t.Fatalf("removing the last key under the policy: %v", err)
		}
		st, _ := f.s.Status(ctx, f.user.ID)
		if len(st.Keys) != 1 || st.BackupCodes != BackupCodeCount || len(f.mails(t)) != mails || len(f.auditKinds(t)) != audit {
			t.Fatalf("a refused removal changed something: %+v, mails %q, audit %q", st, f.mails(t), f.auditKinds(t))
		}
		if _, err := f.keyLogin(t, first, "flow:f"); err != nil {
			t.Fatalf("the key after a refused removal: %v", err)
		}

		// Renaming: one's own key only; control characters dropped.
		if err := f.s.RenameKey(ctx, f.user, keys[0].ID, "Desk\tkey"); err != nil {
			t.Fatal(err)
		}
		mallory := store.User{ID: "u-mallory", Email: "mallory@example.com", PasswordHash: "x", CreatedAt: now, MFAState: store.MFANone}
		if err := f.db.CreateUser(ctx, mallory); err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{
			f.s.RenameKey(ctx, mallory, keys[0].ID, "stolen"),
			f.s.RenameKey(ctx, f.user, "bm9wZQ", "none"),
			f.s.RenameKey(ctx, f.user, "!!", "bad id"),
			f.s.RemoveKey(ctx, mallory, keys[0].ID, Event{}),
		} {
			if !errors.Is(err, ErrNoFactor) {
				t.Fatalf("another's or an unknown key: %v", err)
			}
		}
		if keys, _ := f.s.Keys(ctx, f.user.ID); len(keys) != 1 || keys[0].Name != "Deskkey" {
			t.Fatalf("after renames, keys = %+v", keys)
		}

		// With a second key, one may go.
		second := newSoftKey(virtualwebauthn.AuthenticatorOptions{})
		f.addKey(t, second, "Second")
		if err := f.s.RemoveKey(ctx, f.user, keys[0].ID, Event{ClientAddr: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
		st, _ = f.s.Status(ctx, f.user.ID)
		if len(st.Keys) != 1 || st.Keys[0].Name != "Second" || st.BackupCodes != BackupCodeCount {
			t.Fatalf("after removing one of two: %+v", st)
		}
		if m := f.mails(t); m[len(m)-1] != "A security key was removed from your account" || f.auditKinds(t)[0] != "factor.removed" {
			t.Fatalf("mails %q, audit %q", m, f.auditKinds(t))
		}

		// Without the policy the last key may go, and the backup codes with it.
		if err := f.db.SetOrganizationRequire2FA(ctx, "org-strict", false); err != nil {
			t.Fatal(err)
		}
		if err := f.s.RemoveKey(ctx, f.user, st.Keys[0].ID, Event{}); err != nil {
			t.Fatal(err)
		}
		st, _ = f.s.Status(ctx, f.user.ID)
		if enrolled, _ := f.s.Enrolled(ctx, f.user.ID); enrolled || len(st.Keys) != 0 || st.BackupCodes != 0 {
			t.Fatalf("after removing the last key: enrolled %v, %+v", enrolled, st)
		}
		if !slices.Contains(f.auditKinds(t), "factor.removed") {
			t.Fatal("no factor.removed event")
		}
	})
}
