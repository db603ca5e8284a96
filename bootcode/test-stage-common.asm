; test-stage-common.asm: a stand-in for gptboot in the fallback selector's boot tests.
;
; Included by test-stage-a.asm / test-stage-b.asm, which define STAGE_NAME. Loaded at
; 0000:7c00 with DL = the BIOS drive (by pmbr or by fallback-stage2.bin), it reads the GPT
; (the primary header at LBA 1; the last LBA when LBA 1 is not "EFI PART") and prints on COM1
;   STAGE <name> attrs 1:0000000000000000 2:0800000000000000\r\n
; (or "STAGE <name> backup attrs ..." when it read the backup): the 1-based number and the
; 64-bit attributes, in hex, of every freebsd-boot entry. Then it makes QEMU exit: a
; zero-limit IDT turns int 3 into a triple fault, and QEMU run with -no-reboot stops.
; Build: bootcode/build-fallback.sh [OUTDIR]. Exactly 1024 bytes.

        bits    16
        org     0x7c00

HDR     equ     0x2000                  ; GPT header sector
ENT     equ     0x2200                  ; one sector of entries
COM1    equ     0x3f8

start:
        cli
        xor     ax, ax
        mov     ss, ax
        mov     sp, 0x7c00
        mov     ds, ax
        mov     es, ax
        jmp     0:main
main:
        sti
        cld
        mov     [drive], dl
        mov     dx, COM1 + 3            ; 16550: DLAB = 1, divisor 1 (115200), 8N1
        mov     al, 0x80
        out     dx, al
        mov     dx, COM1
        mov     al, 1
        out     dx, al
        inc     dx
        xor     al, al
        out     dx, al
        mov     dx, COM1 + 3
        mov     al, 0x03
        out     dx, al

        mov     si, s_stage
        call    puts
        mov     eax, 1
        call    read_hdr
        je      .gpt
        mov     si, ENT                 ; AH=48h: total sectors at +0x10
        mov     word [si], 0x1a
        mov     ah, 0x48
        mov     dl, [drive]
        int     0x13
        jc      .end
        mov     eax, [ENT + 0x10]
        dec     eax
        call    read_hdr
        jne     .end
        mov     si, s_backup
        call    puts
.gpt:
        mov     si, s_attrs
        call    puts
        mov     ebp, [HDR + 72]         ; PartitionEntryLBA
        mov     cx, [HDR + 80]          ; NumberOfPartitionEntries
        mov     bx, [HDR + 84]          ; SizeOfPartitionEntry
        mov     si, ENT + 512
        xor     di, di                  ; entry number - 1
.entry:
        jcxz    .end
        cmp     si, ENT + 512
        jb      .have
        mov     eax, ebp
        inc     ebp
        push    si
        mov     si, ENT
        call    read1
        pop     si
        mov     si, ENT
.have:
        pusha
        mov     di, freebsd_boot
        mov     cx, 8
        repe    cmpsw
        popa
        jne     .next
        mov     al, ' '
        call    putc
        lea     ax, [di + 1]
        call    put_dec
        mov     al, ':'
        call    putc
        mov     eax, [si + 52]          ; Attributes (entry byte 48), high dword first
        call    put_hex32
        mov     eax, [si + 48]
        call    put_hex32
.next:
        add     si, bx
        inc     di
        dec     cx
        jmp     .entry
.end:
        mov     si, s_crlf
        call    puts
        mov     dx, COM1 + 5            ; wait until the UART has sent everything (LSR bit 6)
.drain:
        in      al, dx
        test    al, 0x40
        jz      .drain
        cli
        lidt    [no_idt]                ; no interrupt can be delivered ...
        int3                            ; ... so this triple-faults: QEMU -no-reboot exits
.halt:
        hlt
        jmp     .halt

; Reads LBA EAX into HDR; ZF set when it starts with "EFI PART".
read_hdr:
        mov     si, HDR
        call    read1
        cmp     dword [HDR], 'EFI '
        jne     .r
        cmp     dword [HDR + 4], 'PART'
.r:     ret

; One sector at LBA EAX into 0000:SI (AH=42h); a failure ends the line.
read1:
        pushad
        mov     [dap_buf], si
        mov     [dap_lba], eax
        mov     si, dap
        mov     dl, [drive]
        mov     ah, 0x42
        int     0x13
        popad
        jc      main.end
        ret

putc:
        push    dx
        push    ax
        mov     dx, COM1 + 5
.wait:
        in      al, dx
        test    al, 0x20
        jz      .wait
        pop     ax
        mov     dx, COM1
        out     dx, al
        pop     dx
        ret

puts:
        lodsb
        test    al, al
        jz      .done
        call    putc
        jmp     puts
.done:
        ret

put_dec:
        pusha
        xor     cx, cx
        mov     bx, 10
.digit:
        xor     dx, dx
        div     bx
        push    dx
        inc     cx
        test    ax, ax
        jnz     .digit
.out:
        pop     ax
        add     al, '0'
        call    putc
        loop    .out
        popa
        ret

put_hex32:
        pushad
        mov     cx, 8
.nibble:
        rol     eax, 4
        push    ax
        and     al, 0x0f
        add     al, '0'
        cmp     al, '9'
        jbe     .digit
        add     al, 'a' - '9' - 1
.digit:
        call    putc
        pop     ax
        loop    .nibble
        popad
        ret

no_idt: dw      0
        dd      0
dap:    db      16, 0
        dw      1
dap_buf: dw     0
        dw      0
dap_lba: dd     0, 0
; freebsd-boot 83bd6b9d-7f41-11dc-be0b-001560b84f0f, on-disk byte order
freebsd_boot:
        db      0x9d, 0x6b, 0xbd, 0x83, 0x41, 0x7f, 0xdc, 0x11
        db      0xbe, 0x0b, 0x00, 0x15, 0x60, 0xb8, 0x4f, 0x0f
s_stage: db     "STAGE ", STAGE_NAME, 0
s_backup: db    " backup", 0
s_attrs: db     " attrs", 0
s_crlf: db      13, 10, 0
drive:  db      0

        times   1024 - ($ - $$) db 0    ; fails if the code outgrows 1024 bytes
