; fallback-mbr.asm: diskmint's protective-MBR boot program for the fallback selector.
;
; The contract is bootcode/SELECTOR.md; the memory map and limits are in bootcode/README.md.
; Like FreeBSD's pmbr (stand/i386/pmbr/pmbr.S) it relocates itself out of 0x7c00, checks the
; INT 13h extensions, reads the GPT header (LBA 1; the last LBA when LBA 1 is not "EFI PART"),
; and walks the entry array. Unlike pmbr it looks for the first BIOS-boot entry (GRUB's type
; 21686148-6449-6e6f-744e-656564454649) and loads that partition's sectors 1..K (the selector,
; fallback-stage2.bin) at 0000:1000, then jumps there with DL = the BIOS drive.
; On failure it prints "Read error" or "Missing boot loader" on the screen (INT 10h) and on
; COM1, and halts.
;
; Build: bootcode/build-fallback.sh [OUTDIR] (nasm -f bin). The output is exactly 440 bytes:
; bytes 440-511 (disk signature, partition table, 0x55AA) are written by diskmint.

        bits    16
        org     0x0600                  ; where the code runs after relocation (as pmbr)

LOAD    equ     0x7c00                  ; where the BIOS loads sector 0
HDRBUF  equ     0x0800                  ; GPT header (one sector)
ENTBUF  equ     0x0a00                  ; one sector of GPT entries / AH=48h result
STAGE2  equ     0x1000                  ; where the selector is loaded and run
K       equ     16                      ; selector sectors (BIOS-boot partition sectors 1..K)
COM1    equ     0x3f8                   ; 16550 UART base (data / divisor low)

start:
        cli                             ; no interrupts while SS:SP change
        xor     ax, ax
        mov     ss, ax
        mov     sp, LOAD                ; stack grows down below 0x7c00
        mov     ds, ax
        mov     es, ax
        cld
        mov     si, LOAD                ; copy the 512-byte sector to 0x0600
        mov     di, start
        mov     cx, 256
        rep     movsw
        jmp     0:main                  ; CS:IP = 0000:06xx

main:
        sti
        mov     [drive], dl
        mov     ah, 0x41                ; INT 13h extensions present? (BX = 55AAh in)
        mov     bx, 0x55aa
        int     0x13
        jc      err_read
        cmp     bx, 0xaa55
        jne     err_read
        test    cl, 1                   ; bit 0: AH=42h..44h, 47h, 48h supported
        jz      err_read

        mov     eax, 1                  ; primary GPT header (UEFI 2.10 section 5.3.1)
        call    read_hdr
        je      have_gpt
        mov     si, ENTBUF              ; AH=48h drive parameters, result buffer size 0x1a
        mov     word [si], 0x1a
        mov     ah, 0x48
        mov     dl, [drive]
        int     0x13
        jc      err_read
        mov     eax, [ENTBUF + 0x10]    ; total sectors (low dword; +0x10 in the AH=48h result)
        dec     eax                     ; the last LBA holds the backup header
        call    read_hdr
        jne     err_missing

have_gpt:
        mov     ebp, [HDRBUF + 72]      ; PartitionEntryLBA (table 5-5, byte 72)
        mov     cx, [HDRBUF + 80]       ; NumberOfPartitionEntries (byte 80)
        mov     bx, [HDRBUF + 84]       ; SizeOfPartitionEntry (byte 84), divides 512
        mov     si, ENTBUF + 512        ; no sector loaded yet
.next:
        test    cx, cx
        jz      err_missing
        cmp     si, ENTBUF + 512
        jb      .have
        mov     eax, ebp
        inc     ebp
        mov     di, ENTBUF
        call    read1
        mov     si, ENTBUF
.have:
        pusha
        mov     di, bios_boot_type      ; PartitionTypeGUID at entry byte 0
        mov     cx, 8
        repe    cmpsw
        popa
        je      found
        add     si, bx
        dec     cx
        jmp     .next

found:
        mov     eax, [si + 32]          ; StartingLBA (entry byte 32); sector 0 is the table
        inc     eax
        mov     word [dap_count], K
        mov     di, STAGE2
        call    read
        mov     dl, [drive]
        jmp     0:STAGE2

; Reads the sector at LBA EAX into HDRBUF; ZF set when it starts with "EFI PART".
read_hdr:
        mov     di, HDRBUF
        call    read1
        cmp     dword [HDRBUF], 'EFI '
        jne     .r
        cmp     dword [HDRBUF + 4], 'PART'
.r:     ret

; Reads one sector (read1) or [dap_count] sectors (read) at LBA EAX into 0000:DI.
read1:
        mov     word [dap_count], 1
read:
        pushad
        mov     [dap_lba], eax
        mov     [dap_off], di
        mov     si, dap
        mov     dl, [drive]
        mov     ah, 0x42                ; extended read, DS:SI = disk address packet
        int     0x13
        popad                           ; flags survive popad
        jc      err_read
        ret

err_read:
        mov     si, msg_read
        jmp     fatal
err_missing:
        mov     si, msg_missing
fatal:
        mov     dx, COM1 + 3            ; LCR: DLAB = 1
        mov     al, 0x80
        out     dx, al
        mov     dx, COM1                ; divisor 1 = 115200 baud (low, then high byte 0)
        mov     al, 1
        out     dx, al
        inc     dx
        dec     ax
        out     dx, al
        mov     dx, COM1 + 3            ; DLAB = 0, 8 data bits, no parity, 1 stop bit
        mov     al, 0x03
        out     dx, al
.char:
        lodsb
        test    al, al
        jz      .halt
        mov     ah, 0x0e                ; teletype output, page 0
        mov     bx, 7
        int     0x10
        mov     ah, al
        mov     dx, COM1 + 5            ; LSR bit 5: transmit holding register empty
.wait:
        in      al, dx
        test    al, 0x20
        jz      .wait
        mov     dx, COM1
        mov     al, ah
        out     dx, al
        jmp     .char
.halt:
        cli
        hlt
        jmp     .halt

dap:    db      16, 0                   ; packet size, reserved
dap_count:
        dw      1
dap_off:
        dw      0
        dw      0                       ; segment: everything lives in segment 0
dap_lba:
        dd      0, 0

; BIOS boot 21686148-6449-6e6f-744e-656564454649 in its on-disk (mixed-endian) byte order.
bios_boot_type:
        db      0x48, 0x61, 0x68, 0x21, 0x49, 0x64, 0x6f, 0x6e
        db      0x74, 0x4e, 0x65, 0x65, 0x64, 0x45, 0x46, 0x49
msg_read:
        db      "Read error", 13, 10, 0
msg_missing:
        db      "Missing boot loader", 13, 10, 0
drive:  db      0

        times   440 - ($ - $$) db 0     ; fails ("negative") if the code outgrows 440 bytes
