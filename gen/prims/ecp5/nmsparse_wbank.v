// nmsparse_wbank for ECP5: the second read register is the block RAM's output register.
//
// Read after the emitted Verilog, in place of its generic nmsparse_wbank (Yosys:
// `read_verilog -defer -overwrite`; nmsparse's report flow does this). Same behaviour, on
// DP16KD blocks side by side, each with REGMODE "OUTREG" (loaded when OCE = oce) and its read
// latch loaded when CEB = re: up to 512 words as 36-bit blocks (port A writes 36 bits through
// DIA/DIB, port B reads them on DOA/DOB, the pseudo-dual-port form Yosys itself maps to), up
// to 1,024 words as 18-bit blocks; deeper banks keep the generic body (the second register
// then stays in the fabric). The port and address-bit usage follows Yosys' own ECP5 block-RAM
// map (share/lattice/brams_map_16kd.v), with the output register set and OCE wired; Yosys
// has no simulation model of DP16KD, so this form is for synthesis, place and route only.
module nmsparse_wbank #(
    parameter WIDTH = 32,
    parameter ADDR_WIDTH = 6,
    parameter DEPTH = 64
) (
    input wire clk,
    input wire we,
    input wire [ADDR_WIDTH-1:0] waddr,
    input wire [WIDTH-1:0] wdata,
    input wire re,
    input wire [ADDR_WIDTH-1:0] raddr,
    input wire oce,
    output wire [WIDTH-1:0] q
);
    generate
        if (DEPTH <= 512) begin : b36
            localparam TILES = (WIDTH + 35) / 36;
            wire [36*TILES-1:0] wd = wdata;  // zero-extended
            wire [36*TILES-1:0] qd;
            wire [8:0] wa = waddr;
            wire [8:0] ra = raddr;
            genvar t;
            for (t = 0; t < TILES; t = t + 1) begin : tile
                wire [35:0] di = wd[36*t +: 36];
                wire [35:0] dout;
                assign qd[36*t +: 36] = dout;
                DP16KD #(
                    .DATA_WIDTH_A(36), .DATA_WIDTH_B(36),
                    .REGMODE_A("OUTREG"), .REGMODE_B("OUTREG"),
                    .RESETMODE("SYNC"), .ASYNC_RESET_RELEASE("SYNC"),
                    .CSDECODE_A("0b000"), .CSDECODE_B("0b000"),
                    .CLKAMUX("CLKA"), .CLKBMUX("CLKB"), .GSR("DISABLED")
                ) ram (
                .CLKA(clk), .CEA(we), .OCEA(oce), .WEA(1'b1), .RSTA(1'b0), .CSA0(1'b0), .CSA1(1'b0), .CSA2(1'b0),
                .CLKB(clk), .CEB(re), .OCEB(oce), .WEB(1'b0), .RSTB(1'b0), .CSB0(1'b0), .CSB1(1'b0), .CSB2(1'b0),
                .ADA0(1'b1), .ADA1(1'b1), .ADA2(1'b1), .ADA3(1'b1), .ADA4(1'b0), .ADA5(wa[0]), .ADA6(wa[1]), .ADA7(wa[2]), .ADA8(wa[3]), .ADA9(wa[4]), .ADA10(wa[5]), .ADA11(wa[6]), .ADA12(wa[7]), .ADA13(wa[8]),
                .ADB0(1'b0), .ADB1(1'b0), .ADB2(1'b0), .ADB3(1'b0), .ADB4(1'b0), .ADB5(ra[0]), .ADB6(ra[1]), .ADB7(ra[2]), .ADB8(ra[3]), .ADB9(ra[4]), .ADB10(ra[5]), .ADB11(ra[6]), .ADB12(ra[7]), .ADB13(ra[8]),
                .DIA0(di[0]), .DIA1(di[1]), .DIA2(di[2]), .DIA3(di[3]), .DIA4(di[4]), .DIA5(di[5]), .DIA6(di[6]), .DIA7(di[7]), .DIA8(di[8]), .DIA9(di[9]), .DIA10(di[10]), .DIA11(di[11]), .DIA12(di[12]), .DIA13(di[13]), .DIA14(di[14]), .DIA15(di[15]), .DIA16(di[16]), .DIA17(di[17]),
                .DIB0(di[18]), .DIB1(di[19]), .DIB2(di[20]), .DIB3(di[21]), .DIB4(di[22]), .DIB5(di[23]), .DIB6(di[24]), .DIB7(di[25]), .DIB8(di[26]), .DIB9(di[27]), .DIB10(di[28]), .DIB11(di[29]), .DIB12(di[30]), .DIB13(di[31]), .DIB14(di[32]), .DIB15(di[33]), .DIB16(di[34]), .DIB17(di[35]),
                .DOA0(dout[0]), .DOA1(dout[1]), .DOA2(dout[2]), .DOA3(dout[3]), .DOA4(dout[4]), .DOA5(dout[5]), .DOA6(dout[6]), .DOA7(dout[7]), .DOA8(dout[8]), .DOA9(dout[9]), .DOA10(dout[10]), .DOA11(dout[11]), .DOA12(dout[12]), .DOA13(dout[13]), .DOA14(dout[14]), .DOA15(dout[15]), .DOA16(dout[16]), .DOA17(dout[17]),
                .DOB0(dout[18]), .DOB1(dout[19]), .DOB2(dout[20]), .DOB3(dout[21]), .DOB4(dout[22]), .DOB5(dout[23]), .DOB6(dout[24]), .DOB7(dout[25]), .DOB8(dout[26]), .DOB9(dout[27]), .DOB10(dout[28]), .DOB11(dout[29]), .DOB12(dout[30]), .DOB13(dout[31]), .DOB14(dout[32]), .DOB15(dout[33]), .DOB16(dout[34]), .DOB17(dout[35])
                );
            end
            assign q = qd[WIDTH-1:0];
        end else if (DEPTH <= 1024) begin : b18
            localparam TILES = (WIDTH + 17) / 18;
            wire [18*TILES-1:0] wd = wdata;  // zero-extended
            wire [18*TILES-1:0] qd;
            wire [9:0] wa = waddr;
            wire [9:0] ra = raddr;
            genvar t;
            for (t = 0; t < TILES; t = t + 1) begin : tile
                wire [17:0] di = wd[18*t +: 18];
                wire [17:0] dout;
                assign qd[18*t +: 18] = dout;
                DP16KD #(
                    .DATA_WIDTH_A(18), .DATA_WIDTH_B(18),
                    .REGMODE_A("NOREG"), .REGMODE_B("OUTREG"),
                    .RESETMODE("SYNC"), .ASYNC_RESET_RELEASE("SYNC"),
                    .CSDECODE_A("0b000"), .CSDECODE_B("0b000"),
                    .WRITEMODE_A("NORMAL"), .WRITEMODE_B("NORMAL"),
                    .CLKAMUX("CLKA"), .CLKBMUX("CLKB"), .GSR("DISABLED")
                ) ram (
                .CLKA(clk), .CEA(we), .OCEA(oce), .WEA(we), .RSTA(1'b0), .CSA0(1'b0), .CSA1(1'b0), .CSA2(1'b0),
                .CLKB(clk), .CEB(re), .OCEB(oce), .WEB(1'b0), .RSTB(1'b0), .CSB0(1'b0), .CSB1(1'b0), .CSB2(1'b0),
                .ADA0(1'b1), .ADA1(1'b1), .ADA2(1'b0), .ADA3(1'b0), .ADA4(wa[0]), .ADA5(wa[1]), .ADA6(wa[2]), .ADA7(wa[3]), .ADA8(wa[4]), .ADA9(wa[5]), .ADA10(wa[6]), .ADA11(wa[7]), .ADA12(wa[8]), .ADA13(wa[9]),
                .ADB0(1'b0), .ADB1(1'b0), .ADB2(1'b0), .ADB3(1'b0), .ADB4(ra[0]), .ADB5(ra[1]), .ADB6(ra[2]), .ADB7(ra[3]), .ADB8(ra[4]), .ADB9(ra[5]), .ADB10(ra[6]), .ADB11(ra[7]), .ADB12(ra[8]), .ADB13(ra[9]),
                .DIA0(di[0]), .DIA1(di[1]), .DIA2(di[2]), .DIA3(di[3]), .DIA4(di[4]), .DIA5(di[5]), .DIA6(di[6]), .DIA7(di[7]), .DIA8(di[8]), .DIA9(di[9]), .DIA10(di[10]), .DIA11(di[11]), .DIA12(di[12]), .DIA13(di[13]), .DIA14(di[14]), .DIA15(di[15]), .DIA16(di[16]), .DIA17(di[17]),
                .DOB0(dout[0]), .DOB1(dout[1]), .DOB2(dout[2]), .DOB3(dout[3]), .DOB4(dout[4]), .DOB5(dout[5]), .DOB6(dout[6]), .DOB7(dout[7]), .DOB8(dout[8]), .DOB9(dout[9]), .DOB10(dout[10]), .DOB11(dout[11]), .DOB12(dout[12]), .DOB13(dout[13]), .DOB14(dout[14]), .DOB15(dout[15]), .DOB16(dout[16]), .DOB17(dout[17])
                );
            end
            assign q = qd[WIDTH-1:0];
        end else begin : fabric
            reg [WIDTH-1:0] mem [0:DEPTH-1];
            reg [WIDTH-1:0] rd = 0;
            reg [WIDTH-1:0] q_r = 0;
            always @(posedge clk) begin
                if (we)
                    mem[waddr] <= wdata;
                if (re)
                    rd <= mem[raddr];
                if (oce)
                    q_r <= rd;
            end
            assign q = q_r;
        end
    endgenerate
endmodule
