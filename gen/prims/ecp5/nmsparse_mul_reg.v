// nmsparse_mul_reg for ECP5: the operand and product registers are MULT18X18D's input and
// output registers.
//
// Read after the emitted Verilog, in place of its generic nmsparse_mul_reg (Yosys:
// `read_verilog -defer -overwrite`; nmsparse's report flow does this). Same behaviour: A and B
// sign-extended to 18 bits and registered in the DSP (REG_INPUTA/REG_INPUTB on CLK0, loaded
// when CE0 = ce, never reset: RST0 = 0, GSR disabled); P = A * B (signed) registered in the
// DSP's output register (REG_OUTPUT, the same clock, enable and reset), of which the low
// A_WIDTH + B_WIDTH bits are the product. Operands wider than 17 bits keep the generic body.
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
    generate
        if (A_WIDTH <= 17 && B_WIDTH <= 17) begin : dsp
            wire [17:0] ae = {{(18 - A_WIDTH){a[A_WIDTH-1]}}, a};
            wire [17:0] be = {{(18 - B_WIDTH){b[B_WIDTH-1]}}, b};
            wire [35:0] pe;
            MULT18X18D #(
                .REG_INPUTA_CLK("CLK0"), .REG_INPUTA_CE("CE0"), .REG_INPUTA_RST("RST0"),
                .REG_INPUTB_CLK("CLK0"), .REG_INPUTB_CE("CE0"), .REG_INPUTB_RST("RST0"),
                .REG_OUTPUT_CLK("CLK0"), .REG_OUTPUT_CE("CE0"), .REG_OUTPUT_RST("RST0"),
                .GSR("DISABLED")
            ) mult (
                .A0(ae[0]), .A1(ae[1]), .A2(ae[2]), .A3(ae[3]), .A4(ae[4]), .A5(ae[5]), .A6(ae[6]), .A7(ae[7]), .A8(ae[8]), .A9(ae[9]), .A10(ae[10]), .A11(ae[11]), .A12(ae[12]), .A13(ae[13]), .A14(ae[14]), .A15(ae[15]), .A16(ae[16]), .A17(ae[17]),
                .B0(be[0]), .B1(be[1]), .B2(be[2]), .B3(be[3]), .B4(be[4]), .B5(be[5]), .B6(be[6]), .B7(be[7]), .B8(be[8]), .B9(be[9]), .B10(be[10]), .B11(be[11]), .B12(be[12]), .B13(be[13]), .B14(be[14]), .B15(be[15]), .B16(be[16]), .B17(be[17]),
                .C0(1'b0), .C1(1'b0), .C2(1'b0), .C3(1'b0), .C4(1'b0), .C5(1'b0), .C6(1'b0), .C7(1'b0), .C8(1'b0), .C9(1'b0), .C10(1'b0), .C11(1'b0), .C12(1'b0), .C13(1'b0), .C14(1'b0), .C15(1'b0), .C16(1'b0), .C17(1'b0),
                .SIGNEDA(1'b1), .SIGNEDB(1'b1), .SOURCEA(1'b0), .SOURCEB(1'b0),
                .CLK0(clk), .CE0(ce), .RST0(1'b0),
                .P0(pe[0]), .P1(pe[1]), .P2(pe[2]), .P3(pe[3]), .P4(pe[4]), .P5(pe[5]), .P6(pe[6]), .P7(pe[7]), .P8(pe[8]), .P9(pe[9]), .P10(pe[10]), .P11(pe[11]), .P12(pe[12]), .P13(pe[13]), .P14(pe[14]), .P15(pe[15]), .P16(pe[16]), .P17(pe[17]), .P18(pe[18]), .P19(pe[19]), .P20(pe[20]), .P21(pe[21]), .P22(pe[22]), .P23(pe[23]), .P24(pe[24]), .P25(pe[25]), .P26(pe[26]), .P27(pe[27]), .P28(pe[28]), .P29(pe[29]), .P30(pe[30]), .P31(pe[31]), .P32(pe[32]), .P33(pe[33]), .P34(pe[34]), .P35(pe[35])
            );
            assign p = pe[A_WIDTH+B_WIDTH-1:0];
        end else begin : fabric
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
        end
    endgenerate
endmodule
