// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the nmsparse authors
//
// A 4:8 int8 top-k selector built from a generic odd-even transposition sorter
// (rtl/oets_sort.v) and a key macro (include/oets_key.svh, integer key selected by the define
// NM_INT_KEY), wrapped to the top-k contract of DESIGN.md section 3: it is the worked example
// of verifying your own multi-file RTL (README, "Verifying your own RTL").
//
//   i__payload: 8 x int8, element 0 at the LSB
//   o__payload: mask (8 bits, bit j = element j kept) | values (4 x 8) | index (4 x 3)
//   two register stages (keys, then the selection): latency 2, one group per clock, and a
//   stage takes a new group whenever it is empty or its successor takes its group.
`include "oets_key.svh"

module nm_topk_4_8_int8_oets (
    input  logic        clk,
    input  logic        rst,
    input  logic [63:0] i__payload,
    input  logic        i__valid,
    output logic        i__ready,
    output logic [51:0] o__payload,
    output logic        o__valid,
    input  logic        o__ready
);
    localparam int N = 4, M = 8, W = 8, IW = 3;

    // stage 1: the group and its keys
    logic [M*W-1:0] x1, k1;
    logic           v1;
    logic [M*W-1:0] k0;
    always_comb begin
        logic [W-1:0] e;
        for (int j = 0; j < M; j++) begin
            e = i__payload[j*W +: W];
            k0[j*W +: W] = `OETS_KEY(e, W);
        end
    end

    logic [M*IW-1:0] order;
    oets_sort #(.M(M), .KW(W), .IW(IW)) sorter (.keys(k1), .order(order));

    // the N elements of rank 0..N-1 are kept; values and indices in ascending index order
    logic [51:0] result;
    always_comb begin
        logic [M-1:0] keep;
        int slot;
        keep = '0;
        for (int r = 0; r < N; r++)
            keep[order[r*IW +: IW]] = 1'b1;
        result = '0;
        result[M-1:0] = keep;
        slot = 0;
        for (int j = 0; j < M; j++)
            if (keep[j]) begin
                result[M + slot*W +: W] = x1[j*W +: W];
                result[M + N*W + slot*IW +: IW] = IW'(j);
                slot++;
            end
    end

    wire advance2 = !o__valid || o__ready;
    assign i__ready = !v1 || advance2;

    always_ff @(posedge clk) begin
        if (rst) begin
            v1       <= 1'b0;
            o__valid <= 1'b0;
        end else begin
            if (advance2) begin
                o__valid <= v1;
                if (v1)
                    o__payload <= result;
            end
            if (i__ready) begin
                v1 <= i__valid;
                if (i__valid) begin
                    x1 <= i__payload;
                    k1 <= k0;
                end
            end
        end
    end
endmodule
