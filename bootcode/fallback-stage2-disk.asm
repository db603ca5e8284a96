; fallback-stage2-disk.asm: the selector's disk side, %include'd by fallback-stage2.asm (not built alone):
; GPT copies (UEFI 2.10 section 5.3), the checksum table, attribute edits, CRC-32, INT 13h.

; Reads the header sector at LBA EAX into BX; AL = 1 when header and entry array are valid.
load_copy:
        push    eax
        mov     di, bx
        mov     cx, 1
        call    read_sectors
        pop     eax
        call    validate
        setnc   al
        ret

; CF clear when the header at BX, read from LBA EAX, and its entry array are valid. The checks
; are gptboot's (stand/libsa/gpt.c gptread_hdr): signature, revision >= 1.0, header size,
; MyLBA, entry size >= 128 dividing 512, at most 128 entries, header CRC, entry-array CRC.
validate:
        cmp     dword [bx], 'EFI '
        jne     .bad
        cmp     dword [bx + 4], 'PART'
        jne     .bad
        cmp     dword [bx + 8], 0x10000 ; Revision (byte 8)
        jb      .bad
        mov     ecx, [bx + 12]          ; HeaderSize (byte 12): 92..sector size
        cmp     ecx, 92
        jb      .bad
        cmp     ecx, 512
        ja      .bad
        cmp     [bx + 24], eax          ; MyLBA (byte 24)
        jne     .bad
        cmp     dword [bx + 28], 0
        jne     .bad
        mov     eax, [bx + 84]          ; SizeOfPartitionEntry (byte 84): 128, 256 or 512
        cmp     eax, 128
        jb      .bad
        cmp     eax, 512
        ja      .bad
        lea     edx, [eax - 1]
        test    eax, edx
        jnz     .bad
        cmp     dword [bx + 80], 128    ; NumberOfPartitionEntries (byte 80)
        ja      .bad
        cmp     dword [bx + 76], 0      ; PartitionEntryLBA (byte 72) below 2^32
        jne     .bad
        mov     edx, [bx + 16]          ; HeaderCRC32 (byte 16), computed with itself zero
        push    edx
        call    hdr_crc
        pop     edx
        cmp     edx, [bx + 16]
        mov     [bx + 16], edx
        jne     .bad
        call    arraycrc
        cmp     eax, [bx + 88]          ; PartitionEntryArrayCRC32 (byte 88)
        jne     .bad
        clc
        ret
.bad:
        stc
        ret

; Writes the CRC of the header at BX into its HeaderCRC32 field.
hdr_crc:
        push    bx
        mov     dword [bx + 16], 0
        mov     cx, [bx + 12]
        mov     si, bx
        mov     eax, -1
        call    crc_update
        not     eax
        pop     bx
        mov     [bx + 16], eax
        ret

; EAX = CRC-32 of the entry array of the header at BX, read STREAM_SECS sectors at a time.
arraycrc:
        push    cx
        push    si
        push    di
        push    edx
        mov     eax, [bx + 80]
        mul     dword [bx + 84]
        mov     [ac_left], eax
        mov     eax, [bx + 72]
        mov     [ac_lba], eax
        mov     dword [ac_crc], -1
.chunk:
        mov     ecx, [ac_left]
        jecxz   .done
        cmp     ecx, STREAM_SECS * 512
        jbe     .some
        mov     ecx, STREAM_SECS * 512
.some:
        sub     [ac_left], ecx
        push    cx
        add     cx, 511
        shr     cx, 9
        mov     eax, [ac_lba]
        mov     di, STREAM
        call    read_sectors
        movzx   ecx, cx
        add     [ac_lba], ecx
        pop     cx
        mov     eax, [ac_crc]
        push    bx
        mov     si, STREAM
        call    crc_update
        pop     bx
        mov     [ac_crc], eax
        jmp     .chunk
.done:
        mov     eax, [ac_crc]
        not     eax
        pop     edx
        pop     di
        pop     si
        pop     cx
        ret

; SI = entry AX (0-based) of the copy whose header is at BX (its sector cached in ENTSEC).
get_entry:
        push    cx
        push    di
        push    edx
        movzx   eax, ax
        mul     dword [bx + 84]
        mov     si, ax
        and     si, 511
        shr     eax, 9
        add     eax, [bx + 72]
        cmp     eax, [cache_lba]
        je      .hit
        mov     [cache_lba], eax
        mov     di, ENTSEC
        mov     cx, 1
        call    read_sectors
.hit:
        add     si, ENTSEC
        pop     edx
        pop     di
        pop     cx
        ret

; ZF set when the 16 bytes at DS:SI equal those at ES:DI.
guid_eq:
        push    si
        push    di
        push    cx
        mov     cx, 8
        repe    cmpsw
        pop     cx
        pop     di
        pop     si
        ret

; The checksum table (stage-table.ts): magic, version 1, count <= 14, lengths 1..558,080,
; CRC of the sector with its CRC field zero. Anything else is "no table".
read_table:
        cmp     byte [have_sel], 0
        je      .none
        mov     eax, [sel_lba]
        mov     di, TABLE
        mov     cx, 1
        call    read_sectors
        cmp     dword [TABLE], 'DMST'
        jne     .none
        cmp     dword [TABLE + 4], 'AGES'
        jne     .none
        cmp     dword [TABLE + 8], 1
        jne     .none
        mov     ecx, [TABLE + 12]
        cmp     ecx, 14
        ja      .none
        mov     si, TABLE + 32 + 16     ; entry i's length at 32 + 32 i + 16
.len:
        jcxz    .crc
        mov     eax, [si]
        test    eax, eax
        jz      .none
        cmp     eax, MAX_SECS * 512
        ja      .none
        add     si, 32
        dec     cx
        jmp     .len
.crc:
        mov     edx, [TABLE + 16]
        mov     dword [TABLE + 16], 0
        mov     eax, -1
        mov     si, TABLE
        mov     cx, 512
        call    crc_update
        not     eax
        mov     [TABLE + 16], edx
        cmp     eax, edx
        jne     .none
        mov     byte [table_ok], 1
        mov     si, s_table
        mov     di, s_ok
        jmp     trace_text
.none:
        mov     si, s_table
        mov     di, s_none
        jmp     trace_text

; Sets the attribute bits 32..63 of record [cur] to EAX in both valid copies: the entry's
; sector, the array CRC and the header CRC; the backup first, then the primary.
set_attr:
        pushad
        mov     si, [cur]
        mov     [si + R_ATTR], eax
        mov     bx, HDR1
        cmp     byte [valid1], 0
        je      .primary
        call    put_attr
.primary:
        mov     bx, HDR0
        cmp     byte [valid0], 0
        je      .done
        call    put_attr
.done:
        mov     dword [cache_lba], -1
        popad
        ret

put_attr:
        mov     si, [cur]
        movzx   eax, word [si + R_INDEX]
        mul     dword [bx + 84]
        mov     di, ax
        and     di, 511
        shr     eax, 9
        add     eax, [bx + 72]
        push    eax
        push    di
        mov     di, STREAM
        mov     cx, 1
        call    read_sectors
        pop     di
        mov     si, [cur]
        mov     edx, [si + R_ATTR]
        mov     [STREAM + di + 52], edx ; Attributes (entry byte 48), high dword
        pop     eax
        mov     di, STREAM
        mov     cx, 1
        call    write_sectors
        call    arraycrc
        mov     [bx + 88], eax
        call    hdr_crc
        mov     eax, [bx + 24]
        mov     di, bx
        mov     cx, 1
        jmp     write_sectors

; The CRC-32 table (IEEE 802.3, reflected polynomial 0xEDB88320, as GPT uses).
crc_init:
        mov     di, CRCTAB
        xor     cx, cx
.byte:
        movzx   eax, cx
        mov     dx, 8
.bit:
        shr     eax, 1
        jnc     .next
        xor     eax, 0xedb88320
.next:
        dec     dx
        jnz     .bit
        stosd
        inc     cx
        cmp     cx, 256
        jb      .byte
        ret

; EAX = running CRC (pre-inverted) updated with CX bytes at DS:SI. Clobbers BX, CX, SI.
crc_update:
        jcxz    .done
.byte:
        movzx   bx, al
        xor     bl, [si]
        inc     si
        shl     bx, 2
        shr     eax, 8
        xor     eax, [cs:bx + CRCTAB]
        loop    .byte
.done:
        ret

; INT 13h AH=42h / AH=43h of CX sectors at LBA EAX to / from ES:DI; a failure is fatal.
read_sectors:
        mov     byte [io_op], 0x42
        jmp     disk_io
write_sectors:
        mov     byte [io_op], 0x43
disk_io:
        pushad
        mov     word [dap], 16          ; packet size 16, reserved 0
        mov     [dap + 2], cx           ; sectors
        mov     [dap + 4], di           ; buffer offset
        mov     [dap + 6], es           ; buffer segment
        mov     [dap + 8], eax          ; LBA, low dword
        mov     dword [dap + 12], 0
        mov     si, dap
        mov     dl, [drive]
        mov     ah, [io_op]
        xor     al, al                  ; AH=43h: write without verify
        int     0x13
        popad
        jc      err_read
        ret
