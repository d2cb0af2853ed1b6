package admin

import (
	"testing"

	"github.com/twofold-id/twofold/store"
)

func TestDescribe(t *testing.T) {
	u := func(state store.MFAState) store.User { return store.User{MFAState: state} }
	cases := []struct {
		name          string
		m             store.MemberInfo
		state, factor string
	}{
		{"nothing", store.MemberInfo{User: u(store.MFANone)}, "Off", "—"},
		{"app", store.MemberInfo{User: u(store.MFANone), TOTP: true, BackupCodes: 10}, "On", "Authenticator app, 10 backup codes"},
		{"keys", store.MemberInfo{User: u(store.MFANone), Keys: 2, BackupCodes: 1}, "On", "2 security keys, 1 backup code"},
		{"both", store.MemberInfo{User: u(store.MFANone), TOTP: true, Keys: 1, BackupCodes: 3}, "On", "Authenticator app, 1 security key, 3 backup codes"},
		{"reset pending", store.MemberInfo{User: u(store.MFAResetPending), TOTP: true}, "Reset pending", "—"},
		{"re-enrolling", store.MemberInfo{User: u(store.MFAMustEnroll)}, "Re-enrolling", "—"},
	}
	for _, tc := range cases {
		if state, factor := describe(tc.m); state != tc.state || factor != tc.factor {
			t.Errorf("%s: describe = %q, %q; want %q, %q", tc.name, state, factor, tc.state, tc.factor)
		}
	}
}
