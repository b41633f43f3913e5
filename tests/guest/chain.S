/*
 * Boot sector for the IDE data disk of `make guest-check`: SeaBIOS boots the
 * first hard disk (the IDE one, read by PIO, one ioreq per transfer: slow
 * under TCG), so this sector only hands over to the next BIOS disk, the AHCI
 * one (read by DMA), whose syslinux loads the guest's kernel. It moves itself
 * to 0x600, reads sector 0 of drive 0x81 to 0x7c00 and jumps there with
 * DL = 0x81. Linked at 0x600 (see tests/guest/run.sh).
 */
    .code16
    .text
    .globl _start
_start:
    cli
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw $0x7c00, %sp
    sti
    cld
    movw $0x7c00, %si
    movw $0x600, %di
    movw $256, %cx
    rep movsw
    ljmp $0, $moved
moved:
    movw $0x0201, %ax      /* read 1 sector */
    movw $0x0001, %cx      /* cylinder 0, sector 1 */
    movw $0x0081, %dx      /* head 0, drive 0x81 */
    movw $0x7c00, %bx
    int $0x13
    jc fail
    cmpw $0xaa55, 0x7dfe
    jne fail
    movb $0x81, %dl
    ljmp $0, $0x7c00
fail:
    movw $msg, %si
1:  lodsb
    testb %al, %al
    jz 2f
    movb $0x0e, %ah
    int $0x10
    jmp 1b
2:  hlt
    jmp 2b
msg:
    .asciz "chain: no boot sector on drive 0x81\r\n"
    .org 510
    .word 0xaa55
