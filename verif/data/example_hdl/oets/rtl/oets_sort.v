// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the nmsparse authors
//
// Odd-even transposition sort of M (key, index) pairs, combinational: M rounds of
// compare-exchange between neighbours (even pairs in even rounds, odd pairs in odd rounds)
// sort any input. Order: larger key first; equal keys, lower index first (so the order is
// total and the N first indices are exactly the N elements the N:M rule keeps).
//
//   keys  [M*KW-1:0]  key of element j at bits j*KW
//   order [M*IW-1:0]  index of the element of rank r at bits r*IW
module oets_sort #(
    parameter M  = 8,
    parameter KW = 8,
    parameter IW = 3
) (
    input  wire [M*KW-1:0] keys,
    output wire [M*IW-1:0] order
);
    genvar s, j;
    generate
        // stage s holds the pairs after s rounds (one vector per stage, so no false loops)
        for (s = 0; s <= M; s = s + 1) begin : st
            /* verilator lint_off UNUSEDSIGNAL */  // the last stage's keys are not needed
            wire [M*KW-1:0] k;
            /* verilator lint_on UNUSEDSIGNAL */
            wire [M*IW-1:0] ix;
            if (s == 0) begin : load
                assign k = keys;
                for (j = 0; j < M; j = j + 1) begin : index
                    assign ix[j*IW +: IW] = j;
                end
            end else begin : exchange
                for (j = 0; j < M; j = j + 1) begin : lane
                    if ((j % 2) == ((s - 1) % 2) && j + 1 < M) begin : pair
                        wire [KW-1:0] ka = st[s-1].k[j*KW +: KW];
                        wire [KW-1:0] kb = st[s-1].k[(j+1)*KW +: KW];
                        wire [IW-1:0] ia = st[s-1].ix[j*IW +: IW];
                        wire [IW-1:0] ib = st[s-1].ix[(j+1)*IW +: IW];
                        // the left element ranks first: keep the pair, else swap it
                        wire first = (ka > kb) || (ka == kb && ia < ib);
                        assign k[j*KW +: KW]      = first ? ka : kb;
                        assign k[(j+1)*KW +: KW]  = first ? kb : ka;
                        assign ix[j*IW +: IW]     = first ? ia : ib;
                        assign ix[(j+1)*IW +: IW] = first ? ib : ia;
                    end else if (!(j >= 1 && ((j - 1) % 2) == ((s - 1) % 2))) begin : pass
                        // not in a pair this round (the ends of the odd rounds)
                        assign k[j*KW +: KW]  = st[s-1].k[j*KW +: KW];
                        assign ix[j*IW +: IW] = st[s-1].ix[j*IW +: IW];
                    end
                end
            end
        end
    endgenerate
    assign order = st[M].ix;
endmodule
