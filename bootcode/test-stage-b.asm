; test-stage-b.asm: test boot stage "B" (see test-stage-common.asm).
%define STAGE_NAME "B"
%include "test-stage-common.asm"
