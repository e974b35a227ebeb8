# The small exec trampoline (spawn.go): sets a job's rlimits on itself,
# switches to the job's identity, resets every signal and execs the
# program — what the Go trampoline (beo-spawn) does, without starting a
# Go runtime. A whole static x86-64 Linux program, ELF header included,
# for GNU as; mkspawn.sh turns it into spawn_image_amd64.go.
#
# Started as: argv = [program path, program argv...], envp = the
# program's environment, fd 3 = the spec (read to end of file), fd 4 =
# the report pipe (made close-on-exec here: end of file without a
# report means the exec succeeded). The spec, little endian:
#
#   u32 nrlim, u32 ngroups, u32 uid, u32 gid, u32 flags (1: switch identity)
#   nrlim  x { u32 resource, u32 0, u64 cur, u64 max }
#   ngroups x u32 gid
#
# On failure it writes { u32 step, u32 errno } to fd 4 and exits 127.
# Steps: 1 spec, 2 rlimit, 3 setgroups, 4 setgid, 5 setuid, 6 exec.

	.intel_syntax noprefix
	.set BASE, 0x400000
	.set BUF, 327680		# spec buffer: 20 + 16*24 + 65536*4 bytes fit
	.text
ehdr:
	.byte 0x7f, 'E', 'L', 'F', 2, 1, 1, 0
	.quad 0
	.short 2, 0x3e
	.long 1
	.quad BASE + _start - ehdr
	.quad phdr - ehdr
	.quad 0
	.long 0
	.short 64, 56, 2, 64, 0, 0
phdr:
	.long 1, 5			# PT_LOAD, read + execute
	.quad 0, BASE, BASE
	.quad end - ehdr, end - ehdr
	.quad 0x1000
	.long 0x6474e551, 6		# PT_GNU_STACK
	.quad 0, 0, 0, 0, 0, 16

_start:
	mov r15, rsp			# argc, argv..., 0, envp...
	mov rax, [r15]
	lea r14, [r15 + rax*8 + 16]	# envp
	mov edi, 4			# fcntl(4, F_SETFD, FD_CLOEXEC)
	mov esi, 2
	mov edx, 1
	mov eax, 72
	syscall
	sub rsp, BUF + 64
	xor r12d, r12d			# bytes read
1:	mov edi, 3			# read(3, buf + r12, BUF - r12) until end of file
	lea rsi, [rsp + r12]
	mov edx, BUF
	sub rdx, r12
	jz spec_bad			# too big
	xor eax, eax
	syscall
	cmp rax, -4
	je 1b
	test rax, rax
	js spec_err
	jz 2f
	add r12, rax
	jmp 1b
2:	mov edi, 3
	mov eax, 3			# close(3)
	syscall
	cmp r12, 20
	jb spec_bad
	mov r13, rsp			# r13: spec
	mov eax, [r13]			# nrlim
	mov ecx, [r13 + 4]		# ngroups
	imul rax, rax, 24
	lea rax, [rax + rcx*4 + 20]
	cmp rax, r12
	ja spec_bad

	# rlimits: prlimit64(0, res, &new, NULL); on EPERM clamp to the hard
	# limit we have and try again.
	mov ebx, [r13]
	lea rbp, [r13 + 20]
3:	test ebx, ebx
	jz groups
	xor edi, edi
	mov esi, [rbp]
	lea rdx, [rbp + 8]
	xor r10d, r10d
	mov eax, 302
	syscall
	test rax, rax
	jz 5f
	cmp rax, -1			# EPERM
	jne rlimit_err
	xor edi, edi			# prlimit64(0, res, NULL, &old)
	mov esi, [rbp]
	xor edx, edx
	lea r10, [rsp + BUF]
	mov eax, 302
	syscall
	test rax, rax
	jnz rlimit_err
	mov rax, [rsp + BUF + 8]	# old max
	cmp [rbp + 16], rax		# max = min(max, old max), unsigned
	jbe 4f
	mov [rbp + 16], rax
4:	mov rax, [rbp + 16]		# cur = min(cur, max)
	cmp [rbp + 8], rax
	jbe 6f
	mov [rbp + 8], rax
6:	xor edi, edi
	mov esi, [rbp]
	lea rdx, [rbp + 8]
	xor r10d, r10d
	mov eax, 302
	syscall
	test rax, rax
	jnz rlimit_err
5:	add rbp, 24
	dec ebx
	jmp 3b

groups:					# rbp: the groups
	test dword ptr [r13 + 16], 1
	jz signals
	mov edi, [r13 + 4]		# setgroups(ngroups, groups)
	mov rsi, rbp
	mov eax, 116
	syscall
	mov ebx, 3
	test rax, rax
	jnz fail
	mov edi, [r13 + 12]		# setgid(gid)
	mov eax, 106
	syscall
	mov ebx, 4
	test rax, rax
	jnz fail
	mov edi, [r13 + 8]		# setuid(uid)
	mov eax, 105
	syscall
	mov ebx, 5
	test rax, rax
	jnz fail

signals:				# every signal but 9 and 19 to SIG_DFL, none blocked
	mov ebx, 1
7:	cmp ebx, 9
	je 8f
	cmp ebx, 19
	je 8f
	mov edi, ebx
	lea rsi, [rip + zeros]
	xor edx, edx
	mov r10d, 8
	mov eax, 13
	syscall
8:	inc ebx
	cmp ebx, 64
	jbe 7b
	mov edi, 2			# rt_sigprocmask(SIG_SETMASK, {}, NULL, 8)
	lea rsi, [rip + zeros]
	xor edx, edx
	mov r10d, 8
	mov eax, 14
	syscall

	mov r12d, 1000000		# exec, retrying "text file busy" for ~2 s:
	mov ebx, 2000000000		# pause 1 ms doubling to 100 ms, budget 2 s
9:	mov rdi, [r15 + 8]		# execve(argv[0], &argv[1], envp)
	lea rsi, [r15 + 16]
	mov rdx, r14
	mov eax, 59
	syscall
	cmp rax, -26			# ETXTBSY
	jne exec_err
	cmp rbx, r12
	jb exec_err
	sub rbx, r12
	mov qword ptr [rsp + BUF], 0	# nanosleep({0, r12 ns}, NULL)
	mov [rsp + BUF + 8], r12
	lea rdi, [rsp + BUF]
	xor esi, esi
	mov eax, 35
	syscall
	mov rax, -26
	shl r12, 1
	cmp r12, 100000000
	jbe 9b
	mov r12d, 100000000
	jmp 9b

exec_err:
	mov ebx, 6
	jmp fail
rlimit_err:
	mov ebx, 2
	jmp fail
spec_bad:
	mov rax, -22			# EINVAL
spec_err:
	mov ebx, 1
fail:					# write(4, {step, -rax}, 8); exit_group(127)
	neg eax
	mov [rsp + BUF], ebx
	mov [rsp + BUF + 4], eax
	mov edi, 4
	lea rsi, [rsp + BUF]
	mov edx, 8
	mov eax, 1
	syscall
	mov edi, 127
	mov eax, 231
	syscall

	.balign 8
zeros:
	.quad 0, 0, 0, 0
end:
