; serial-marker.asm: a 512-byte volume boot record that writes a marker line to COM1.
;
; Test boot code for diskmint's legacy-BIOS boot test (test/boot-bios.test.ts). A GPT disk
; with syslinux's gptmbr.bin in sector 0 and this file as the contents of the partition
; marked `legacy-bios-bootable` (GPT attribute bit 2): gptmbr.bin loads the partition's
; first sector at 0000:7c00, checks its 0x55AA signature and jumps to it in 16-bit real
; mode (DS:SI pointing at a hybrid partition entry, EAX = "!GPT"; none of that is used here).
;
; The program
;   1. sets a known state: interrupts off while SS:SP change, DS = ES = SS = 0,
;      SP = 0x7c00, CS:IP = 0000:7cxx by a far jump;
;   2. programs the 16550 UART of COM1 (I/O 0x3f8) for 115200 baud 8N1 through its
;      registers (divisor latch = 1), no BIOS call;
;   3. writes "DISKMINT-BIOS-OK" CR LF, polling the line status register (0x3fd) until
;      bit 5 (transmit holding register empty) is set before each byte;
;   4. halts for good: cli; hlt in a loop.
;
; Build: bootcode/build-serial-marker.sh [OUTPUT]
;   = nasm -f bin -o OUTPUT bootcode/serial-marker.asm
; The output is exactly 512 bytes; `times` below fails to assemble if the code outgrows it.

        bits    16
        org     0x7c00

COM1    equ     0x3f8           ; data register / divisor latch low (DLAB = 1)
IER     equ     COM1 + 1        ; interrupt enable / divisor latch high (DLAB = 1)
FCR     equ     COM1 + 2        ; FIFO control
LCR     equ     COM1 + 3        ; line control
MCR     equ     COM1 + 4        ; modem control
LSR     equ     COM1 + 5        ; line status
LSR_THRE equ    0x20            ; bit 5: transmit holding register empty

start:
        cli                     ; no interrupts while the stack moves
        xor     ax, ax
        mov     ss, ax
        mov     sp, 0x7c00      ; stack grows down from just below us
        mov     ds, ax
        mov     es, ax
        jmp     0x0000:main     ; CS:IP = 0000:7cxx, whatever the loader used

main:
        cld
        ; UART: no interrupts, 115200 baud (divisor 1), 8 data bits, no parity, 1 stop bit.
        mov     dx, IER
        xor     al, al
        out     dx, al
        mov     dx, LCR
        mov     al, 0x80        ; DLAB = 1: 0x3f8/0x3f9 become the divisor latch
        out     dx, al
        mov     dx, COM1
        mov     al, 1           ; divisor low byte: 115200 / 1
        out     dx, al
        mov     dx, IER
        xor     al, al          ; divisor high byte
        out     dx, al
        mov     dx, LCR
        mov     al, 0x03        ; DLAB = 0, 8N1
        out     dx, al
        mov     dx, FCR
        mov     al, 0xc7        ; FIFOs on and cleared, 14-byte trigger
        out     dx, al
        mov     dx, MCR
        mov     al, 0x03        ; DTR and RTS
        out     dx, al

        mov     si, message
.next:
        lodsb                   ; AL = [DS:SI++]
        test    al, al
        jz      halt
        mov     ah, al
        mov     dx, LSR
.wait:
        in      al, dx
        test    al, LSR_THRE
        jz      .wait
        mov     dx, COM1
        mov     al, ah
        out     dx, al
        jmp     .next

halt:
        cli
        hlt                     ; interrupts are off: this sleeps for good
        jmp     halt            ; (an NMI could still wake us)

message:
        db      "DISKMINT-BIOS-OK", 13, 10, 0

        times   510 - ($ - $$) db 0     ; fails ("negative") if the code grows past 510 bytes
        dw      0xaa55                  ; boot signature: bytes 0x55 0xAA
