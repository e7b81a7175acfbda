// nmsparse_mul_reg: signed product of two registered operands, itself registered.
//
// The operand registers and the product register load when ce is high and are not reset (no
// transfer is lost: the valid bits beside them are). They are the input and output registers
// of a DSP block, written as a module of their own so that a flow can map it onto its DSP
// primitive with those registers inside (gen/prims/ecp5/nmsparse_mul_reg.v: ECP5 MULT18X18D
// with REG_INPUTA/REG_INPUTB/REG_OUTPUT; Yosys' synth_ecp5 does not move registers into the
// DSP by itself). p is the product of the operands loaded two enabled cycles before. Generated
// by nmsparse; the include guard lets several emitted modules be compiled together.
`ifndef NMSPARSE_MUL_REG
`define NMSPARSE_MUL_REG
// verilator lint_off DECLFILENAME
module nmsparse_mul_reg #(
    parameter A_WIDTH = 8,
    parameter B_WIDTH = 8
) (
    input wire clk,
    input wire ce,
    input wire signed [A_WIDTH-1:0] a,
    input wire signed [B_WIDTH-1:0] b,
    output wire signed [A_WIDTH+B_WIDTH-1:0] p
);
    reg signed [A_WIDTH-1:0] a_r = 0;
    reg signed [B_WIDTH-1:0] b_r = 0;
    reg signed [A_WIDTH+B_WIDTH-1:0] p_r = 0;
    always @(posedge clk)
        if (ce) begin
            a_r <= a;
            b_r <= b;
            p_r <= a_r * b_r;
        end
    assign p = p_r;
endmodule
// verilator lint_on DECLFILENAME
`endif
