package main

import (
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// The memory a container (or a systemd unit) may use, from Linux's control
// groups, so that serve's soft memory limit stays under it (memory.go).
// Go's runtime reads a cgroup's CPU limit for GOMAXPROCS but not its
// memory limit.
//
// Where the limit lives: /proc/self/cgroup names the process's group in
// each hierarchy, /proc/self/mountinfo says where that hierarchy is
// mounted and which of its groups the mount shows as its root (inside a
// container the mount's root is usually the container's own group). A
// group that no mount shows has no readable limit: reading another
// group's would be guessing. A limit on any ancestor binds too, so every
// group from the process's up to the mount is read and the smallest limit
// wins (on cgroup v1 with use_hierarchy off, rare on current kernels, a
// parent's limit does not bind and the figure errs small). cgroup v2
// keeps it in memory.max ("max" when unlimited); cgroup v1 in the memory
// controller's memory.limit_in_bytes (a number near 2^63 when unlimited).
// On a hybrid host both exist; v2's unified hierarchy then has no memory
// files and v1's answers. Anything unreadable or malformed counts as no
// limit: serve then keeps the plan it would have had anyway.

// unlimitedV1 is the smallest memory.limit_in_bytes taken to mean "no
// limit": the kernel reports its page-rounded maximum, 2^63 less a page.
const unlimitedV1 = 1 << 62

// containerMemory returns the smallest memory limit of the process's
// control group and its ancestors, read from root (the file system's
// root, "/" in service), or false when there is none.
func containerMemory(root fs.FS) (int64, bool) {
	groups, err1 := fs.ReadFile(root, "proc/self/cgroup")
	mounts, err2 := fs.ReadFile(root, "proc/self/mountinfo")
	if err1 != nil || err2 != nil {
		return 0, false
	}
	// cgroup v2: the line "0::/path", the mount of type cgroup2.
	if p, ok := cgroupPath(string(groups), func(id, controllers string) bool { return id == "0" && controllers == "" }); ok {
		if m, ok := cgroupMount(string(mounts), p, func(fstype, _ string) bool { return fstype == "cgroup2" }); ok {
			if limit, ok := smallestLimit(root, m, p, "memory.max"); ok {
				return limit, true
			}
		}
	}
	// cgroup v1: the hierarchy whose controllers include memory.
	p, ok := cgroupPath(string(groups), func(_, controllers string) bool { return hasField(controllers, "memory") })
	if !ok {
		return 0, false
	}
	m, ok := cgroupMount(string(mounts), p, func(fstype, options string) bool { return fstype == "cgroup" && hasField(options, "memory") })
	if !ok {
		return 0, false
	}
	return smallestLimit(root, m, p, "memory.limit_in_bytes")
}

// mount is where a cgroup hierarchy is mounted: at point, showing the
// hierarchy's group root.
type mount struct{ root, point string }

// cgroupPath returns the group path of the first /proc/self/cgroup line
// ("id:controllers:path") that match accepts. A path that climbs ("..":
// the group lies outside this cgroup namespace) is refused, as no mount
// here shows it.
func cgroupPath(groups string, match func(id, controllers string) bool) (string, bool) {
	for line := range strings.Lines(groups) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) == 3 && match(f[0], f[1]) && strings.HasPrefix(f[2], "/") {
			if path.Clean(f[2]) != f[2] || strings.Contains(f[2], "..") {
				return "", false
			}
			return f[2], true
		}
	}
	return "", false
}

// cgroupMount returns the /proc/self/mountinfo entry, among those whose
// file system type and super options match accepts, that shows group:
// the one with the longest root above it. An entry reads "id parent dev
// root point options [optional...] - fstype source superoptions".
func cgroupMount(mounts, group string, match func(fstype, options string) bool) (mount, bool) {
	var best mount
	found := false
	for line := range strings.Lines(mounts) {
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(f) || !match(f[sep+1], f[sep+3]) {
			continue
		}
		m := mount{root: f[3], point: f[4]}
		if _, ok := within(group, m.root); ok && (!found || len(m.root) > len(best.root)) {
			best, found = m, true
		}
	}
	return best, found
}

// within returns group's path below root, or false when root does not
// contain it.
func within(group, root string) (string, bool) {
	if root == "/" {
		return strings.TrimPrefix(group, "/"), true
	}
	rel, ok := strings.CutPrefix(group, root)
	if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) {
		return "", false
	}
	return strings.TrimPrefix(rel, "/"), true
}

// smallestLimit reads file in group's directory under m and in each
// ancestor's up to the mount, and returns the smallest limit among them.
func smallestLimit(root fs.FS, m mount, group, file string) (int64, bool) {
	rel, ok := within(group, m.root)
	if !ok {
		return 0, false
	}
	var best int64
	dir := path.Join(strings.TrimPrefix(m.point, "/"), rel)
	top := strings.TrimPrefix(path.Clean(m.point), "/")
	for {
		if limit, ok := readLimit(root, path.Join(dir, file)); ok && (best == 0 || limit < best) {
			best = limit
		}
		if dir == top || dir == "." || dir == "" {
			break
		}
		dir = path.Dir(dir)
	}
	return best, best > 0
}

// readLimit parses one limit file: a byte count, or "max" (cgroup v2) or
// a number at or above unlimitedV1 (cgroup v1) for no limit.
func readLimit(root fs.FS, name string) (int64, bool) {
	b, err := fs.ReadFile(root, name)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 || n >= unlimitedV1 {
		return 0, false
	}
	return n, true
}

// hasField reports whether the comma-separated list holds name.
func hasField(list, name string) bool {
	for f := range strings.SplitSeq(list, ",") {
		if f == name {
			return true
		}
	}
	return false
}
