"""The default seccomp profile (Docker's, as data) and its compilation to BPF with libseccomp.

The profile is compiled once in the parent (pyseccomp → libseccomp → BPF bytes, cached on disk
by content); the container child only hands the bytes to prctl(PR_SET_SECCOMP), one syscall.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable

from envtool._util.digest import small_sha256_hex
from envtool._util.record import dataclass
from envtool.errors import HostError

# Allowed for every container (moby profiles/seccomp/default.json, unconditional names).
ALLOWED = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync
fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat
getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr
llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack membarrier
memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2
mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64
preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read
readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages
removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl
semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid
setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat
shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall
socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs
sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime
utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
arch_prctl modify_ldt
kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace
""".split()

# Allowed only when the container holds the capability (Docker's "includes.caps" groups).
BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
    "CAP_SYS_ADMIN": ("bpf", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                      "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
                      "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
                      "setns", "syslog", "umount", "umount2", "unshare"),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}

# clone(2) may not create namespaces without CAP_SYS_ADMIN
CLONE_NS_FLAGS = 0x7E020000
# personality(2): only these personas (Docker's list)
PERSONALITIES = (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)
AF_VSOCK = 40


@dataclass(frozen=True)
class Profile:
    allowed: tuple[str, ...]
    clone_any: bool            # CAP_SYS_ADMIN: clone with namespace flags, clone3
    default_errno: int = errno.EPERM

    def key(self) -> str:
        data = json.dumps([sorted(self.allowed), self.clone_any, self.default_errno, os.uname().machine])
        return small_sha256_hex(data.encode())[:32]


def default_profile(capabilities: Iterable[str]) -> Profile:
    caps = set(capabilities)
    allowed = set(ALLOWED)
    for cap, names in BY_CAPABILITY.items():
        if cap in caps:
            allowed.update(names)
    clone_any = "CAP_SYS_ADMIN" in caps
    if not clone_any:
        allowed.discard("clone3")
    return Profile(tuple(sorted(allowed)), clone_any)


def compile_bpf(profile: Profile) -> bytes:
    try:
        import pyseccomp as sc
    except (ImportError, OSError, RuntimeError) as e:
        raise HostError(f"cannot load libseccomp: {e}",
                        hint="apt-get install -y libseccomp2 and pip install pyseccomp") from None
    f = sc.SyscallFilter(sc.ERRNO(profile.default_errno))
    if os.uname().machine == "x86_64":
        for arch in (sc.Arch.X86, sc.Arch.X32):
            try:
                f.add_arch(arch)
            except OSError:
                pass
    for name in profile.allowed:
        try:
            f.add_rule(sc.ALLOW, name)
        except (OSError, ValueError, RuntimeError):
            continue  # not a syscall on this architecture / libseccomp version
    f.add_rule(sc.ALLOW, "socket", sc.Arg(0, sc.NE, AF_VSOCK))
    for persona in PERSONALITIES:
        f.add_rule(sc.ALLOW, "personality", sc.Arg(0, sc.EQ, persona))
    if profile.clone_any:
        f.add_rule(sc.ALLOW, "clone")
    else:
        f.add_rule(sc.ALLOW, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_NS_FLAGS, 0))
        # ENOSYS, not EPERM: glibc then falls back to clone(2), so threads still work
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    try:
        import tempfile

        with tempfile.TemporaryFile() as tmp:
            f.export_bpf(tmp)
            tmp.seek(0)
            return tmp.read()
    except OSError as e:
        raise HostError(f"cannot compile the seccomp profile: {e}") from None


_memory: dict[str, bytes] = {}


def bpf_for(capabilities: Iterable[str], cache_dir: str | None = None) -> bytes:
    """Compiled BPF for the default profile of this capability set (memory, then disk cache)."""
    profile = default_profile(capabilities)
    key = profile.key()
    if key in _memory:
        return _memory[key]
    path = os.path.join(cache_dir, f"{key}.bpf") if cache_dir else None
    if path and os.path.exists(path):
        with open(path, "rb") as fh:
            data = fh.read()
    else:
        data = compile_bpf(profile)
        if path:
            from envtool._util.atomic import write_atomic

            write_atomic(path, data)
    _memory[key] = data
    return data
