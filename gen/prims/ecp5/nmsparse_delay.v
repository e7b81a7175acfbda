// nmsparse_delay for ECP5: the first DEPTH - 1 stages in a LUT-RAM ring, the last a register.
//
// Read after the emitted Verilog, in place of its generic nmsparse_delay (Yosys:
// `read_verilog -defer -overwrite`; nmsparse's report flow does this). Same behaviour: on
// every load (ce high) the ring's word at wp takes d and the output register takes the word
// at rp = wp - (DEPTH - 1) (mod 16), written DEPTH - 1 loads before, so q is the d of DEPTH
// loads ago; ring and register start at zero, so q is zero until then, as in the generic
// form. Both pointers move on every load and start DEPTH - 1 apart, so they need no reset.
// A 16-word ring is one TRELLIS_DPR16X4 per 4 bits (Yosys infers them: write synchronous,
// read asynchronous); WIDTH x (DEPTH - 1) flip-flops become WIDTH / 4 LUT-RAMs. From 2 to
// 16 stages; other depths keep the generic flip-flops.
module nmsparse_delay #(
    parameter WIDTH = 8,
    parameter DEPTH = 2
) (
    input wire clk,
    input wire ce,
    input wire [WIDTH-1:0] d,
    output wire [WIDTH-1:0] q
);
    integer i;
    generate
        if (DEPTH >= 2 && DEPTH <= 16) begin : ring
            (* ram_style = "distributed" *)
            reg [WIDTH-1:0] ram [0:15];
            localparam [3:0] LAG = DEPTH - 1;
            reg [3:0] wp = 0;
            reg [3:0] rp = 4'd0 - LAG;
            reg [WIDTH-1:0] q_r = 0;
            initial
                for (i = 0; i < 16; i = i + 1)
                    ram[i] = 0;
            always @(posedge clk)
                if (ce) begin
                    ram[wp] <= d;
                    q_r <= ram[rp];
                    wp <= wp + 4'd1;
                    rp <= rp + 4'd1;
                end
            assign q = q_r;
        end else begin : fabric
            // the generic form's flip-flops (one stage, or more than 16)
            reg [WIDTH*DEPTH-1:0] sr = 0;
            if (DEPTH == 1) begin : one
                always @(posedge clk)
                    if (ce)
                        sr <= d;
            end else begin : chain
                always @(posedge clk)
                    if (ce)
                        sr <= {sr[WIDTH*(DEPTH-1)-1:0], d};
            end
            assign q = sr[WIDTH*DEPTH-1 -: WIDTH];
        end
    endgenerate
endmodule
