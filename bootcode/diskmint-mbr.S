/*
 * diskmint-mbr.S: diskmint's own MBR / protective-MBR boot code.
 *
 * The BIOS loads sector 0 at 0000:7c00 and jumps to it in 16-bit real mode, with CS:IP
 * either 0000:7c00 or 07c0:0000 and no promise about DS, ES, SS or SP. This program sets a
 * known state (interrupts off while SS:SP change, DS = ES = SS = 0, SP = 0x7c00, CS = 0 by a
 * far jump), prints a message with the BIOS teletype service (int 0x10, AH = 0x0e) and halts.
 *
 * It must fit in 440 bytes: bytes 440-445 of sector 0 hold the disk signature and 2 reserved
 * bytes, 446-509 the partition table and 510-511 the 0x55AA signature, all written by diskmint.
 *
 * Build: bootcode/build.sh (as --32, ld -m elf_i386 -Ttext 0x7c00, objcopy -O binary,
 * padded with zeros to exactly 440 bytes).
 */
	.code16
	.text
	.globl	_start
_start:
	cli				/* no interrupts while the stack moves */
	xorw	%ax, %ax
	movw	%ax, %ss
	movw	$0x7c00, %sp		/* stack grows down from just below us */
	movw	%ax, %ds
	movw	%ax, %es
	ljmp	$0, $main		/* CS:IP = 0000:7cxx, whatever the BIOS used */
main:
	sti
	cld
	movw	$message, %si
putc:
	lodsb				/* AL = [DS:SI++] */
	testb	%al, %al
	jz	halt
	movb	$0x0e, %ah		/* teletype output */
	movw	$0x0007, %bx		/* page 0, light grey (graphics modes) */
	int	$0x10
	jmp	putc
halt:
	hlt				/* sleep until an interrupt, then sleep again */
	jmp	halt

message:
	.asciz	"diskmint: this disk has no boot loader installed\r\n"

	/*
	 * Pad with zeros to the end of the 440-byte code area. If the code ever outgrows it,
	 * the assembler stops here with "attempt to move .org backwards".
	 */
	.org	440, 0
