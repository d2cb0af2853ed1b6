package main

import (
	"testing"
	"testing/fstest"
)

// Mount tables as Linux writes them: a cgroup v2 host (systemd), a
// container with its own cgroup namespace, and a hybrid v1 host like this
// machine's (the unified hierarchy without a memory controller).
const (
	mountsV2 = `22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
27 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	mountsHybrid = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	groupsHybrid = `4:memory:/process_api/97197eec
1:cpu:/
0::/
`
	// A v1 container without a cgroup namespace: the mount shows the
	// container's group as its root, /proc/self/cgroup the host's path.
	mountsV1Container = `35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
`
)

// TestContainerMemory reads the memory limit of the process's control
// group, the smallest along its ancestors, on each layout; no limit,
// missing files and garbage all read as none.
func TestContainerMemory(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	cases := []struct {
		name  string
		fs    fstest.MapFS
		want  int64
		found bool
	}{
		{"v2 systemd unit under a limited slice", fstest.MapFS{
			"proc/self/mountinfo": file(mountsV2),
			"proc/self/cgroup":    file("0::/system.slice/twofold.service\n"),
			"sys/fs/cgroup/system.slice/twofold.service/memory.max": file("max\n"),
			"sys/fs/cgroup/system.slice/memory.max":                 file("1073741824\n"),
		}, 1 << 30, true},
		{"v2 unit limit below its slice's", fstest.MapFS{
			"proc/self/mountinfo": file(mountsV2),
			"proc/self/cgroup":    file("0::/system.slice/twofold.service\n"),
			"sys/fs/cgroup/system.slice/twofold.service/memory.max": file("268435456\n"),
			"sys/fs/cgroup/system.slice/memory.max":                 file("1073741824\n"),
		}, 256 << 20, true},
		{"v2 container with its own namespace", fstest.MapFS{
			"proc/self/mountinfo":      file(mountsV2),
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("536870912\n"),
		}, 512 << 20, true},
		{"v2 unlimited", fstest.MapFS{
			"proc/self/mountinfo":      file(mountsV2),
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("max\n"),
		}, 0, false},
		{"hybrid host, v1 memory limited", fstest.MapFS{
			"proc/self/mountinfo": file(mountsHybrid),
			"proc/self/cgroup":    file(groupsHybrid),
			"sys/fs/cgroup/memory/process_api/97197eec/memory.limit_in_bytes": file("402653184\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes":                      file("9223372036854771712\n"),
		}, 384 << 20, true},
		{"hybrid host, v1 unlimited", fstest.MapFS{
			"proc/self/mountinfo":                        file(mountsHybrid),
			"proc/self/cgroup":                           file(groupsHybrid),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("9223372036854771712\n"),
		}, 0, false},
		{"v1 container seeing its group as the mount's root", fstest.MapFS{
			"proc/self/mountinfo":                        file(mountsV1Container),
			"proc/self/cgroup":                           file("9:memory:/docker/abc\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("134217728\n"),
		}, 128 << 20, true},
		{"v1 container told a path outside its mount", fstest.MapFS{
			"proc/self/mountinfo":                        file(mountsV1Container),
			"proc/self/cgroup":                           file("9:memory:/docker/abcdef\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("134217728\n"),
		}, 0, false},
		{"v2 group outside the namespace", fstest.MapFS{
			"proc/self/mountinfo":      file(mountsV2),
			"proc/self/cgroup":         file("0::/../sibling\n"),
			"sys/fs/cgroup/memory.max": file("33554432\n"),
			"memory.max":               file("33554432\n"),
		}, 0, false},
		{"two cgroup2 mounts: the one that shows the group", fstest.MapFS{
			"proc/self/mountinfo": file(mountsV2 + "50 22 0:26 /other /mnt/other rw - cgroup2 cgroup2 rw\n"),
			"proc/self/cgroup":    file("0::/system.slice/twofold.service\n"),
			"sys/fs/cgroup/system.slice/twofold.service/memory.max": file("268435456\n"),
			"mnt/other/memory.max": file("33554432\n"),
		}, 256 << 20, true},
		{"no proc", fstest.MapFS{}, 0, false},
		{"garbage", fstest.MapFS{
			"proc/self/mountinfo":      file("nonsense - - -\n\n" + mountsV2[:40]),
			"proc/self/cgroup":         file("::\n0::relative\n"),
			"sys/fs/cgroup/memory.max": file("-5\n"),
		}, 0, false},
		{"malformed limit", fstest.MapFS{
			"proc/self/mountinfo":      file(mountsV2),
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("lots\n"),
		}, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, found := containerMemory(c.fs)
			if got != c.want || found != c.found {
				t.Errorf("containerMemory = %d, %v; want %d, %v", got, found, c.want, c.found)
			}
		})
	}
}
