// Package admin is the owner console: an organization's members and their
// 2FA state, the owner-initiated 2FA reset with its confirmation page,
// resending the re-enrollment link, the organization's 2FA policy and its
// audit log; and the same actions as a JSON API for access tokens twofold
// issued to an owner with the twofold:admin scope.
//
// Authorization is decided here, in one place (authorize): the actor must
// be an owner of the organization, the target a member of it, and the
// target never the actor. A reset also needs the owner's own sign-in with
// a second factor within the last ten minutes. The reset itself (what it
// deletes, revokes and sends, in one transaction) is mfa.Service.Reset.
package admin
