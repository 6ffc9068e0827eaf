/* Multiboot (v1) entry of the ferry QEMU test guest.
 *
 * QEMU's -kernel loader finds the header below in the first 8 KiB of the
 * ELF file, loads the image at its linked address (1 MiB) and jumps to
 * _start in 32-bit protected mode, paging off, with EAX = 0x2BADB002 and
 * EBX = the physical address of the multiboot information structure. */
	.set MB_MAGIC, 0x1BADB002
	.set MB_FLAGS, 0x00000003	/* page-aligned modules, memory info */
	.set MB_CHECKSUM, -(MB_MAGIC + MB_FLAGS)

	.section .multiboot, "a"
	.balign 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long MB_CHECKSUM

	.section .bss
	.balign 16
stack_bottom:
	.skip 16384
stack_top:

	.section .text
	.globl _start
	.type _start, @function
_start:
	cli
	movl $stack_top, %esp
	pushl %ebx		/* multiboot information */
	pushl %eax		/* loader magic */
	call guest_main
1:	hlt
	jmp 1b
	.section .note.GNU-stack, "", @progbits
