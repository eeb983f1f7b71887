// Threefry-2x32 with 20 rounds (Salmon et al., SC'11, Random123): the generator of docs/FORMAT.md 4.4,
// bit for bit, fully unrolled and pipelined: one draw (x0, x1) per enabled cycle.
//
//   ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA);  x = (c0 + ks0, c1 + ks1)
//   20 rounds: x0 += x1; x1 = rotl(x1, R[r mod 8]) ^ x0; after every 4th round (s = 1..5)
//   x0 += ks[s mod 3]; x1 += ks[(s + 1) mod 3] + s
//
// Why unrolled: the update unit needs one draw per synapse per cycle in every SIMD lane, so a lane's
// generator must finish 20 rounds per cycle of throughput; an iterative core (one round per cycle) would
// need 20 cores per lane for the same rate, which is the same adders plus a state multiplexer each.
// STAGE sets the other trade-off, latency against clock: a register after every STAGE rounds, latency
// 20 / STAGE enabled cycles; each stage is STAGE serial 32-bit add + XOR levels (+ the key injection), so
// STAGE = 4 (latency 5, one key injection per stage) keeps the stage about as deep as the update lane's own
// 16 x 16 multiply + add (docs/HARDWARE_UPDATE.md has the measured cost). The rotations are wiring.
//
// Only c0 is pipelined: c1, k0 and k1 are read by every stage combinationally and must stay constant while
// draws are in flight. That is how the update unit uses it (c1 = the layer's sr_step, key = (sr_seed, 0),
// both fixed during a pass), and it saves 96 flip-flops per stage; Yosys merges the key schedule (ks2 and
// the injection constants), which depends on k0/k1 alone, across the lanes that share them.
// `en` advances every stage (the unit's stall); no reset: the unit tracks which draws are valid.
module mbnn_threefry #(
    parameter int STAGE = 4,  // rounds per pipeline stage: 1, 2, 4, 5, 10 or 20
    parameter int LAT = 20 / STAGE  // derived, do not override: cycles from c0 to (x0, x1)
) (
    input  logic        clk,
    input  logic        en,
    input  logic [31:0] c0,  // counter word 0: a new one every enabled cycle
    input  logic [31:0] c1,  // counter word 1 and the key: constant while draws are in flight
    input  logic [31:0] k0,
    input  logic [31:0] k1,
    output logic [31:0] x0,  // the draw of the c0 fed LAT enabled cycles earlier
    output logic [31:0] x1
);
    localparam int ROUNDS = 20;
    localparam logic [31:0] PARITY = 32'h1BD1_1BDA;

    if (STAGE < 1 || STAGE > ROUNDS || ROUNDS % STAGE != 0 || LAT != ROUNDS / STAGE) begin : g_bad_params
        $error("mbnn_threefry: STAGE must divide 20 (1, 2, 4, 5, 10 or 20); do not override LAT");
    end

    function automatic int rot(int r);
        case (r % 8)
            0: rot = 13;
            1: rot = 15;
            2: rot = 26;
            3: rot = 6;
            4: rot = 17;
            5: rot = 29;
            6: rot = 16;
            default: rot = 24;
        endcase
    endfunction

    function automatic logic [31:0] rotl(logic [31:0] v, int r);
        rotl = (v << r) | (v >> (32 - r));
    endfunction

    logic [31:0] ks [3];
    assign ks[0] = k0;
    assign ks[1] = k1;
    assign ks[2] = k0 ^ k1 ^ PARITY;

    logic [31:0] i0, i1;  // the state entering round 0
    assign i0 = c0 + ks[0];
    assign i1 = c1 + ks[1];

    // round r reads the state g_round[r - 1] leaves (o0, o1): registered where round r ends a stage
    for (genvar r = 0; r < ROUNDS; r++) begin : g_round
        logic [31:0] p0, p1, m0, m1, n0, n1, o0, o1;
        if (r == 0) begin : g_first
            assign p0 = i0;
            assign p1 = i1;
        end else begin : g_next
            assign p0 = g_round[r - 1].o0;
            assign p1 = g_round[r - 1].o1;
        end
        assign m0 = p0 + p1;
        assign m1 = rotl(p1, rot(r)) ^ m0;
        if (r % 4 == 3) begin : g_inject
            localparam int S = (r + 1) / 4;  // key injection 1..5
            assign n0 = m0 + ks[S % 3];
            assign n1 = m1 + (ks[(S + 1) % 3] + 32'(S));
        end else begin : g_plain
            assign n0 = m0;
            assign n1 = m1;
        end
        if ((r + 1) % STAGE == 0) begin : g_reg
            always_ff @(posedge clk) begin
                if (en) begin
                    o0 <= n0;
                    o1 <= n1;
                end
            end
        end else begin : g_wire
            assign o0 = n0;
            assign o1 = n1;
        end
    end

    assign x0 = g_round[ROUNDS - 1].o0;
    assign x1 = g_round[ROUNDS - 1].o1;
endmodule
