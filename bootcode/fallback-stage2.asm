; fallback-stage2.asm: diskmint's boot-stage selector (SELECTOR.md steps 1-6).
;
; Loaded by fallback-mbr.bin from sectors 1..K of the BIOS-boot partition at 0000:1000 and
; entered there with DL = the BIOS drive. It picks one of the freebsd-boot partitions with the
; rules gptboot applies to freebsd-ufs slots (FreeBSD stand/libsa/gpt.c), checks its bytes
; against the checksum table in sector 0 of the BIOS-boot partition (formats/boot/
; stage-table.ts), and loads it exactly as pmbr does (whole partition, at most 558,080 bytes,
; at 0000:7c00, jump with DL = drive). Nothing of ours lives in 0x7c00-0x8ffff.
; Memory map and limits: bootcode/README.md. COM1 gets one "DMSEL ..." line per decision.
;
; Build: bootcode/build-fallback.sh [OUTDIR] (nasm -f bin); at most K = 16 sectors.

        bits    16
        org     0x1000

; ---- memory map (all in segment 0, below 0x7c00) -------------------------------------------
CRCTAB  equ     0x3000                  ; 256 dwords: CRC-32 table
HDR0    equ     0x3400                  ; primary GPT header sector
HDR1    equ     0x3600                  ; backup GPT header sector
TABLE   equ     0x3800                  ; stage checksum table (BIOS-boot sector 0)
ENTSEC  equ     0x3a00                  ; one sector of the source copy's entries (cached)
RECS    equ     0x3c00                  ; freebsd-boot records, REC_SIZE bytes each
MAXRECS equ     32
STREAM  equ     0x4000                  ; STREAM_SECS sectors: array CRC, read-modify-write
STREAM_SECS equ 16
LOAD_SEG equ    0x07c0                  ; the stage: 0000:7c00 ..
MAX_SECS equ    1090                    ; .. 0x90000: 558,080 bytes (pmbr.S "too large")
COM1    equ     0x3f8

; record layout
R_INDEX equ     0                       ; word: entry index (0-based)
R_TRIED equ     2                       ; byte: already a candidate
R_FIRST equ     4                       ; dword: first LBA
R_SECS  equ     8                       ; dword: sectors to load (clamped to MAX_SECS)
R_ATTR  equ     12                      ; dword: attribute bits 32..63
R_GUID  equ     16                      ; 16 bytes: unique partition GUID (entry byte 16)
REC_SIZE equ    32

; attribute bits 57-59 (FreeBSD sys/sys/disk/gpt.h) within the high dword
BOOTFAILED equ  1 << (57 - 32)
BOOTONCE equ    1 << (58 - 32)
BOOTME  equ     1 << (59 - 32)

; ---- variables (0x0500.., free low memory) --------------------------------------------------
        absolute 0x0500
drive:  resb    1
valid0: resb    1                       ; primary header + array valid
valid1: resb    1                       ; backup header + array valid
have_sel: resb  1
table_ok: resb  1
        resb    1
src:    resw    1                       ; header of the copy whose entries we read
nrec:   resw    1
cur:    resw    1                       ; record being worked on
idx:    resw    1
sel_lba: resd   1
cache_lba: resd 1
ac_left: resd   1
ac_lba: resd    1
ac_crc: resd    1
io_op:  resb    1
        alignb  4
dap:    resb    16

        section .text
start:
        cli
        xor     ax, ax
        mov     ss, ax
        mov     sp, 0x7c00              ; stack: 0x6000-0x7bff
        mov     ds, ax
        mov     es, ax
        sti
        cld
        mov     [drive], dl
        call    uart_init
        call    crc_init
        mov     dword [cache_lba], -1

; step 1: the primary at LBA 1, the backup at its alternate LBA or the last LBA
        mov     eax, 1
        mov     bx, HDR0
        call    load_copy
        mov     [valid0], al
        mov     si, s_primary
        call    trace_gpt
        cmp     byte [valid0], 0        ; only a valid primary names the backup's place
        je      .last
        cmp     dword [HDR0 + 36], 0
        jne     .last
        mov     eax, [HDR0 + 32]        ; AlternateLBA (UEFI 2.10 table 5-5, byte 32)
        jmp     .backup
.last:
        mov     si, STREAM              ; AH=48h drive parameters
        mov     word [si], 0x1a
        mov     ah, 0x48
        mov     dl, [drive]
        int     0x13
        jc      err_read
        mov     eax, [STREAM + 0x10]    ; total sectors; the last LBA = total - 1
        dec     eax
.backup:
        mov     bx, HDR1
        call    load_copy
        mov     [valid1], al
        mov     si, s_backup
        call    trace_gpt
        mov     word [src], HDR0
        cmp     byte [valid0], 0
        jne     scan
        mov     word [src], HDR1
        cmp     byte [valid1], 0
        jne     scan
        mov     si, msg_gpt
        jmp     fatal

; the freebsd-boot entries into RECS, the first BIOS-boot entry's start into sel_lba
scan:
        mov     bx, [src]
        mov     word [idx], 0
.entry:
        mov     ax, [idx]
        cmp     ax, [bx + 80]           ; NumberOfPartitionEntries
        jae     .done
        call    get_entry
        mov     di, type_fboot
        call    guid_eq
        je      .fboot
        cmp     byte [have_sel], 0
        jne     .skip
        mov     di, type_bios
        call    guid_eq
        jne     .skip
        mov     eax, [si + 32]          ; StartingLBA
        mov     [sel_lba], eax
        mov     byte [have_sel], 1
        jmp     .skip
.fboot:
        cmp     dword [si + 36], 0      ; LBAs beyond 32 bits: not for us
        jne     .skip
        cmp     dword [si + 44], 0
        jne     .skip
        mov     ax, [nrec]
        cmp     ax, MAXRECS
        jae     .skip
        mov     di, REC_SIZE
        mul     di
        add     ax, RECS
        mov     di, ax
        mov     ax, [idx]
        mov     [di + R_INDEX], ax
        mov     byte [di + R_TRIED], 0
        mov     eax, [si + 32]          ; StartingLBA (entry byte 32)
        mov     [di + R_FIRST], eax
        mov     edx, [si + 40]          ; EndingLBA (byte 40), inclusive
        sub     edx, eax
        inc     edx
        cmp     edx, MAX_SECS
        jbe     .size
        mov     edx, MAX_SECS
.size:
        mov     [di + R_SECS], edx
        mov     eax, [si + 52]          ; Attributes (byte 48), bits 32..63
        mov     [di + R_ATTR], eax
        add     si, 16                  ; UniquePartitionGUID (byte 16)
        add     di, R_GUID
        mov     cx, 8
        rep     movsw
        inc     word [nrec]
.skip:
        inc     word [idx]
        jmp     .entry
.done:
        call    read_table

; step 2: exactly bootonce -> bootfailed (bootonce cleared), both copies
        mov     si, RECS
        mov     cx, [nrec]
.once:
        jcxz    .once_done
        mov     eax, [si + R_ATTR]
        and     eax, BOOTME | BOOTONCE | BOOTFAILED
        cmp     eax, BOOTONCE
        jne     .once_next
        mov     [cur], si
        call    mark_failed
.once_next:
        add     si, REC_SIZE
        loop    .once
.once_done:

; step 3: the first with bootme+bootonce, then those with bootme, then the rest (each once)
        mov     si, RECS
        mov     cx, [nrec]
.p1:
        jcxz    .p1_done
        mov     eax, [si + R_ATTR]
        and     eax, BOOTME | BOOTONCE
        cmp     eax, BOOTME | BOOTONCE
        je      .p1_try
        add     si, REC_SIZE
        loop    .p1
        jmp     .p1_done
.p1_try:
        call    try_stage
.p1_done:
        mov     dl, 1                   ; pass 2: bootme only
.pass:
        mov     si, RECS
        mov     cx, [nrec]
.cand:
        jcxz    .pass_done
        cmp     byte [si + R_TRIED], 0
        jne     .cand_next
        test    dl, dl
        jz      .cand_try
        test    dword [si + R_ATTR], BOOTME
        jz      .cand_next
.cand_try:
        pusha
        call    try_stage               ; returns only when the stage failed
        popa
.cand_next:
        add     si, REC_SIZE
        loop    .cand
.pass_done:
        dec     dl                      ; pass 3: every other entry
        jz      .pass
        mov     si, msg_missing         ; step 6
        jmp     fatal

; step 4: load record SI at 0000:7c00, check it; return when it failed, else step 5 and jump.
try_stage:
        mov     [cur], si
        mov     byte [si + R_TRIED], 1
        mov     si, s_try
        call    trace_cur
        call    load_stage
        call    check_stage             ; DI = why it failed, or 0
        test    di, di
        jz      .pass
        mov     si, s_skip
        call    trace_cur_di
        mov     si, [cur]
        test    dword [si + R_ATTR], BOOTONCE
        jz      .ret
        call    mark_failed
.ret:
        ret
.pass:
        mov     si, [cur]               ; step 5: a tried-once stage loses bootme first
        mov     eax, [si + R_ATTR]
        test    eax, BOOTONCE
        jz      .jump
        and     eax, ~BOOTME
        call    set_attr
        mov     si, s_mark
        mov     di, s_bootme_cleared
        call    trace_cur_di
.jump:
        mov     si, s_boot
        call    trace_cur
        mov     dl, [drive]
        jmp     0:0x7c00

; bootonce cleared, bootfailed set on [cur], both copies
mark_failed:
        pusha
        mov     si, [cur]
        mov     eax, [si + R_ATTR]
        and     eax, ~BOOTONCE
        or      eax, BOOTFAILED
        call    set_attr
        mov     si, s_mark
        mov     di, s_bootfailed
        call    trace_cur_di
        popa
        ret

%include "fallback-stage2-disk.asm"
%include "fallback-stage2-load.asm"
%include "fallback-stage2-io.asm"

; ---- constants -----------------------------------------------------------------------------
; freebsd-boot 83bd6b9d-7f41-11dc-be0b-001560b84f0f, on-disk (mixed-endian) byte order
type_fboot:
        db      0x9d, 0x6b, 0xbd, 0x83, 0x41, 0x7f, 0xdc, 0x11
        db      0xbe, 0x0b, 0x00, 0x15, 0x60, 0xb8, 0x4f, 0x0f
; BIOS boot 21686148-6449-6e6f-744e-656564454649
type_bios:
        db      0x48, 0x61, 0x68, 0x21, 0x49, 0x64, 0x6f, 0x6e
        db      0x74, 0x4e, 0x65, 0x65, 0x64, 0x45, 0x46, 0x49
s_dmsel:        db      "DMSEL ", 0
s_primary:      db      "gpt primary", 0
s_backup:       db      "gpt backup", 0
s_ok:           db      " ok", 0
s_bad:          db      " bad", 0
s_table:        db      "table", 0
s_none:         db      " none", 0
s_try:          db      "try", 0
s_skip:         db      "skip", 0
s_boot:         db      "boot", 0
s_mark:         db      "mark", 0
s_empty:        db      " empty", 0
s_crc:          db      " crc", 0
s_bootfailed:   db      " bootfailed", 0
s_bootme_cleared: db    " bootme-cleared", 0
s_crlf:         db      13, 10, 0
s_halt:         db      "halt", 0
msg_missing:    db      "Missing boot loader", 0
msg_read:       db      "Read error", 0
msg_gpt:        db      "Invalid GPT", 0

end_of_code:
%if end_of_code - start > 16 * 512
%error "fallback-stage2 outgrows its 16 sectors (K in fallback-mbr.asm)"
%endif
