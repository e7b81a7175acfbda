// A hand-written N:M top-k selector (rank method, one register stage), written from
// DESIGN.md alone. It is the example of a "third-party" implementation that
// `nmsparse crosscheck --hdl-dir` and `NMSPARSE_HDL_DIR` verify; its sidecar is nm_topk_2_4_int8_example.json.
module nm_topk_2_4_int8_example (
    input  wire               clk,
    input  wire               rst,
    input  wire [31:0]      i__payload,
    input  wire               i__valid,
    output wire               i__ready,
    output reg  [23:0]      o__payload,
    output reg                o__valid,
    input  wire               o__ready
);
    localparam N = 2, M = 4, W = 8, IW = 2, SIGNED_INT = 1;

    reg [W-1:0] x   [0:M-1];
    reg [W-1:0] key [0:M-1];
    reg [M-1:0] keep;
    reg [23:0] result;
    integer i, j, rank, slot;

    always @* begin
        for (j = 0; j < M; j = j + 1) begin
            x[j] = i__payload[j*W +: W];
            if (SIGNED_INT)
                key[j] = x[j][W-1] ? (~x[j] + 1'b1) : x[j];   // |x|, |-2^(W-1)| = 2^(W-1)
            else
                key[j] = {1'b0, x[j][W-2:0]};                // sign bit cleared
        end
        for (j = 0; j < M; j = j + 1) begin
            rank = 0;
            for (i = 0; i < M; i = i + 1)
                if (key[i] > key[j] || (i < j && key[i] == key[j]))
                    rank = rank + 1;
            keep[j] = rank < N;
        end
        result = 0;
        result[M-1:0] = keep;
        slot = 0;
        for (j = 0; j < M; j = j + 1)
            if (keep[j]) begin
                result[M + slot*W +: W] = x[j];
                result[M + N*W + slot*IW +: IW] = j[IW-1:0];
                slot = slot + 1;
            end
    end

    assign i__ready = !o__valid || o__ready;

    always @(posedge clk) begin
        if (rst) begin
            o__valid   <= 1'b0;
            o__payload <= 0;
        end else if (i__ready) begin
            o__valid <= i__valid;
            if (i__valid)
                o__payload <= result;
        end
    end
endmodule
