# The ghost: what stands on the master for one remote process (see
# ghost.go). A whole static x86-64 Linux program, ELF header included,
# for GNU as; mkimage.sh turns it into image_amd64.go. No libc, no data
# segment: one read-execute page from the spawner's memfd, shared by
# every ghost, and the stack the kernel gives it.
#
# fd 3 is a SOCK_SEQPACKET socket to the spawner:
#   spawner -> ghost  "x" CODE        exit with status CODE
#                     "k" SIG         die by signal SIG (no core dump)
#                     "e" ARG\0...    execve itself again with these
#                                     arguments (the remote process
#                                     exec'd: ps shows the new command)
#   ghost -> spawner  one byte 0      ready: every handler is in place
#                                     (again after each "e")
#                     one byte SIG    per signal the ghost received
# End of file on fd 3 (the spawner is gone) ends the ghost.
#
# Every signal but SIGKILL and SIGSTOP is caught and reported, never
# acted on; the spawner sees those two through wait.

	.intel_syntax noprefix
	.set BASE, 0x400000
	.set STACKBUF, 131072	# message buffer (64 KiB) + argv pointers
	.text
ehdr:
	.byte 0x7f, 'E', 'L', 'F', 2, 1, 1, 0	# 64-bit, little endian, SysV
	.quad 0
	.short 2			# ET_EXEC
	.short 0x3e			# x86-64
	.long 1
	.quad BASE + _start - ehdr	# entry
	.quad phdr - ehdr		# program headers
	.quad 0				# no section headers
	.long 0
	.short 64, 56, 2, 64, 0, 0
phdr:
	.long 1, 5			# PT_LOAD, read + execute
	.quad 0, BASE, BASE		# offset, vaddr, paddr
	.quad end - ehdr, end - ehdr	# file size, memory size
	.quad 0x1000
	.long 0x6474e551, 6		# PT_GNU_STACK: read + write, no execute
	.quad 0, 0, 0, 0, 0, 16

_start:
	mov r15, rsp			# argc, argv..., 0, envp...
	mov rax, [r15]
	lea r14, [r15 + rax*8 + 16]	# envp, kept for "e"
	mov rsi, [r15 + 8]		# argv[0]: the name is its base name
	test rsi, rsi
	jz handlers
	mov rdi, rsi
1:	mov al, [rdi]
	inc rdi
	test al, al
	jz 2f
	cmp al, '/'
	jne 1b
	cmp byte ptr [rdi], 0		# a trailing slash keeps the name before it
	je 1b
	mov rsi, rdi
	jmp 1b
2:	mov edi, 15			# prctl(PR_SET_NAME, name): what ps -e and pgrep see
	mov eax, 157
	syscall

handlers:				# rt_sigaction(1..64 but 9, 19)
	mov r12d, 1
3:	cmp r12d, 9
	je 4f
	cmp r12d, 19
	je 4f
	mov edi, r12d
	lea rsi, [rip + act]
	xor edx, edx
	mov r10d, 8
	mov eax, 13
	syscall				# 32, 33 and any the kernel refuses: ignored
4:	inc r12d
	cmp r12d, 64
	jbe 3b
	push 0				# ready: sendto(3, "\0", 1, MSG_NOSIGNAL, NULL, 0)
	mov edi, 3
	mov rsi, rsp
	mov edx, 1
	mov r10d, 0x4000
	xor r8d, r8d
	xor r9d, r9d
	mov eax, 44
	syscall
	pop rax
	sub rsp, STACKBUF

serve:
	mov edi, 3			# read(3, buf, 65536)
	mov rsi, rsp
	mov edx, 65536
	xor eax, eax
	syscall
	cmp rax, -4			# EINTR (SA_RESTART makes it rare)
	je serve
	test rax, rax
	jle gone			# end of file or an error: the spawner is gone
	cmp rax, 2
	jl serve			# too short: ignored
	movzx ebx, byte ptr [rsp + 1]
	mov cl, [rsp]
	cmp cl, 'x'
	je exit
	cmp cl, 'k'
	je die
	cmp cl, 'e'
	je reexec
	jmp serve

gone:
	xor ebx, ebx
exit:					# exit_group(rbx & 0xff)
	mov edi, ebx
	mov eax, 231
	syscall

die:					# no core file, default action, unblocked, raised
	xor edi, edi
	mov esi, 4			# RLIMIT_CORE
	lea rdx, [rip + zeros]
	xor r10d, r10d
	mov eax, 302			# prlimit64(0, RLIMIT_CORE, {0, 0}, NULL)
	syscall
	mov edi, ebx
	lea rsi, [rip + zeros]		# SIG_DFL, no flags
	xor edx, edx
	mov r10d, 8
	mov eax, 13
	syscall
	mov edi, 2			# rt_sigprocmask(SIG_SETMASK, {}, NULL, 8)
	lea rsi, [rip + zeros]
	xor edx, edx
	mov r10d, 8
	mov eax, 14
	syscall
	mov eax, 39			# getpid
	syscall
	mov edi, eax
	mov esi, ebx
	mov eax, 62			# kill(getpid(), sig)
	syscall
	add ebx, 128			# not dead (a signal that does not kill): exit 128+sig
	jmp exit

reexec:					# rax = message length; strings from buf+1
	lea rsi, [rsp + 1]		# next string
	lea rdx, [rsp + rax]		# end of message
	lea rdi, [rsp + 65536]		# argv array
	mov rcx, rdi
	mov r8d, 8190			# room for pointers
5:	cmp rsi, rdx
	jae 7f
	dec r8d
	jz 7f
	mov [rdi], rsi
	add rdi, 8
6:	cmp rsi, rdx			# skip to after the next NUL
	jae 7f
	lodsb
	test al, al
	jnz 6b
	jmp 5b
7:	mov qword ptr [rdi], 0
	cmp rdi, rcx
	je serve			# no argument: ignore
	mov byte ptr [rdx - 1], 0	# the last string ends in the buffer
	lea rdi, [rip + self]		# execve("/proc/self/exe", argv, envp)
	mov rsi, rcx
	mov rdx, r14
	mov eax, 59
	syscall
	jmp serve			# it failed: stay as we are

handler:				# signal handler: rdi = signal number
	push rdi
	mov edi, 3			# sendto(3, &sig, 1, MSG_NOSIGNAL, NULL, 0)
	mov rsi, rsp
	mov edx, 1
	mov r10d, 0x4000
	xor r8d, r8d
	xor r9d, r9d
	mov eax, 44
	syscall
	pop rdi
	test rax, rax
	js gone				# the spawner is gone
	ret

restorer:
	mov eax, 15			# rt_sigreturn
	syscall

	.balign 8
act:					# struct kernel_sigaction
	.quad BASE + handler - ehdr
	.quad 0x14000000		# SA_RESTORER | SA_RESTART
	.quad BASE + restorer - ehdr
	.quad -1			# every signal blocked while one is reported
zeros:
	.quad 0, 0, 0, 0
self:
	.asciz "/proc/self/exe"
end:
