// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the nmsparse authors
//
// The selection key of DESIGN.md section 1, as a macro: OETS_KEY(x, W) is the unsigned key of
// the W-bit element x. With NM_INT_KEY defined the elements are two's-complement integers and
// the key is |x| (|-2^(W-1)| = 2^(W-1), no overflow); without it they are floats and the key is
// the bit pattern with the sign bit cleared.
`ifndef OETS_KEY_SVH
`define OETS_KEY_SVH
`ifdef NM_INT_KEY
`define OETS_KEY(x, W) ((x[(W)-1]) ? (~(x) + 1'b1) : (x))
`else
`define OETS_KEY(x, W) ({1'b0, x[(W)-2:0]})
`endif
`endif
