"""Worked numeric examples transcribed from the lecture notes in /work/shared/seeds/*.txt.

Plain data only: every number here is as written in the notes (after the corrections flagged
with ``CORRECTED`` below); tests/test_golden.py checks each one against scipy/numpy first (which
proves the transcription) and then against gpuconv.

Seed files (short names used in ``source``):

* 000 = 000_d61a8d420472d7e1.txt  "Convolution and Cross-correlation" (T.-S. Le, HCMUT)
* 001 = 001_c5a6cabfcb0e2b8f.txt  "Correlation vs Convolution" (P. Mesejo, UGR)
* 002 = 002_6183c268efa1cedc.txt  "Convolutions and CNNs" (B. N. Subudhi, IIT Jammu)
* 003 = 003_c6862b76ae2e33fc.txt  "Convolution - Matrix computation" (T.-S. Le, HCMUT)
* 004 = 004_3dc44e4581b80ecc.txt  "Convolutions - Mathematical Perspective" (properties only)

Conventions: ``convolve`` / ``correlate`` mean scipy.signal.convolve2d / correlate2d (or the N-d
convolve / correlate) with ``in1`` the image (the signal the kernel slides over) and ``in2`` the
kernel.  None of the notes' examples uses mode 'same' with an even kernel, so scipy's centring
of 'same' (output = full[(k-1)//2 : (k-1)//2 + n]) never disambiguates anything here.
"""

from __future__ import annotations

S000 = "000_d61a8d420472d7e1.txt"
S001 = "001_c5a6cabfcb0e2b8f.txt"
S002 = "002_6183c268efa1cedc.txt"
S003 = "003_c6862b76ae2e33fc.txt"
S004 = "004_3dc44e4581b80ecc.txt"

_IMPULSE3 = [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
_ONE_TO_NINE = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]

# ---------------------------------------------------------------------------------------------
# Plain convolution / correlation examples (scipy.signal.convolve2d / correlate2d oracles).
# ``partials`` are single output entries the notes compute on the way, as {(row, col): value}.
# ---------------------------------------------------------------------------------------------
CONV_EXAMPLES = [
    dict(
        name="hcmut_conv_4x4_by_3x3_valid",
        source=f"{S000}: 'Final result ... Input image 4x4 CONV Filter's kernel 3x3 ... Output "
        "12 10 / 8 12 ... (4 - 3 + 1) x (4 - 3 + 1)' (no padding, stride = 1)",
        op="convolve",
        mode="valid",
        in1=[[3, 1, 0, 1], [1, 1, 2, 0], [1, 2, 2, 1], [0, 1, 0, 2]],
        in2=[[1, 0, 2], [1, 2, 0], [0, 1, 1]],
        expected=[[12, 10], [8, 12]],
        partials={},
    ),
    dict(
        name="ugr_correlate_kernel_1to9_over_impulse_same",
        source=f"{S001}: 'Cross-correlation ... Kernel H 1 2 3 / 4 5 6 / 7 8 9 (x) Image F "
        "0 0 0 / 0 1 0 / 0 0 0 = 9 8 7 / 6 5 4 / 3 2 1' (zero-padded, output the image's size)",
        op="correlate",
        mode="same",
        in1=_IMPULSE3,
        in2=_ONE_TO_NINE,
        expected=[[9, 8, 7], [6, 5, 4], [3, 2, 1]],
        partials={},
    ),
    dict(
        name="ugr_correlate_impulse_kernel_over_1to9_same",
        source=f"{S001}: 'Kernel H 0 0 0 / 0 1 0 / 0 0 0 (x) Image F 1 2 3 / 4 5 6 / 7 8 9 = "
        "1 2 3 / 4 5 6 / 7 8 9 ... No commutative!!!!'",
        op="correlate",
        mode="same",
        in1=_ONE_TO_NINE,
        in2=_IMPULSE3,
        expected=_ONE_TO_NINE,
        partials={},
    ),
    dict(
        name="ugr_convolve_kernel_1to9_over_impulse_same",
        source=f"{S001}: 'Convolution ... Kernel H 1 2 3 / 4 5 6 / 7 8 9 (*) Image F "
        "0 0 0 / 0 1 0 / 0 0 0 = 1 2 3 / 4 5 6 / 7 8 9'",
        op="convolve",
        mode="same",
        in1=_IMPULSE3,
        in2=_ONE_TO_NINE,
        expected=_ONE_TO_NINE,
        partials={},
    ),
    dict(
        name="ugr_convolve_impulse_kernel_over_1to9_same",
        source=f"{S001}: 'Kernel H 0 0 0 / 0 1 0 / 0 0 0 (*) Image F 1 2 3 / 4 5 6 / 7 8 9 = "
        "1 2 3 / 4 5 6 / 7 8 9 ... Commutative!!!!'",
        op="convolve",
        mode="same",
        in1=_ONE_TO_NINE,
        in2=_IMPULSE3,
        expected=_ONE_TO_NINE,
        partials={},
    ),
    dict(
        name="iitj_conv_2x3_by_3x1_full",
        source=f"{S002}: 'x(m, n) = (4 5 6 / 7 8 9)  h(m, n) = (1 / 1 / 1) ... Dimension of "
        "resultant matrix = (2 + 3 - 1) x (3 + 1 - 1) = 4 x 3 ... y(m, n) = (4 5 6 / 11 13 15 / "
        "11 13 15 / 7 8 9)'",
        op="convolve",
        mode="full",
        in1=[[4, 5, 6], [7, 8, 9]],
        in2=[[1], [1], [1]],
        expected=[[4, 5, 6], [11, 13, 15], [11, 13, 15], [7, 8, 9]],
        # 'y(0, 0) = 4 x 1 = 4', 'y(0, 1) = 5 x 1 = 5', 'y(0, 2) = 6 x 1 = 6',
        # 'y(1, 2) = 6 x 1 + 9 x 1 = 15', 'y(1, 1) = 5 x 1 + 8 x 1 = 13'
        partials={(0, 0): 4, (0, 1): 5, (0, 2): 6, (1, 2): 15, (1, 1): 13},
    ),
    dict(
        name="iitj_conv_3x3_by_3x2_full",
        source=f"{S002}: 'Matrix representation ... x(m, n) = (1 2 3 / 4 5 6 / 7 8 9)  h(m, n) = "
        "(1 1 / 1 1 / 1 1) ... y(m, n) = (1 3 5 3 / 5 12 16 9 / 12 27 33 18 / 1 24 28 15 / "
        "7 15 17 9)'",
        op="convolve",
        mode="full",
        in1=_ONE_TO_NINE,
        in2=[[1, 1], [1, 1], [1, 1]],
        # CORRECTED (002_6183c268efa1cedc.txt): the notes print row 4 as '1 24 28 15'; the entry
        # y(3, 0) is x(1,0) + x(2,0) = 4 + 7 = 11 (the column sums 12/27/33/18 above and the
        # neighbours 24 = 5+8+4+7 fix the intended value), a dropped leading digit.
        expected=[[1, 3, 5, 3], [5, 12, 16, 9], [12, 27, 33, 18], [11, 24, 28, 15], [7, 15, 17, 9]],
        partials={},
    ),
    dict(
        name="iitj_conv_3x3_by_1x3_full",
        source=f"{S002}: 'x(m, n) = (1 2 3 / 4 5 6 / 7 8 9)  h(m, n) = (3 4 5)  y(m, n) = "
        "(3 10 22 22 15 / 12 31 58 49 30 / 21 52 94 76 45)'",
        op="convolve",
        mode="full",
        in1=_ONE_TO_NINE,
        in2=[[3, 4, 5]],
        expected=[[3, 10, 22, 22, 15], [12, 31, 58, 49, 30], [21, 52, 94, 76, 45]],
        partials={},
    ),
    dict(
        name="iitj_correlate_2x2_2x2_full",
        source=f"{S002}: 'Determine the correlation between two matrices x1[m, n] = [3 1; 2 4] "
        "x2[m, n] = [1 5; 2 3] ... The result y[m, n] is a 3x3 matrix ... [9 9 2; 21 24 9; "
        "10 22 4]'",
        op="correlate",
        mode="full",
        in1=[[3, 1], [2, 4]],
        in2=[[1, 5], [2, 3]],
        expected=[[9, 9, 2], [21, 24, 9], [10, 22, 4]],
        partials={},
    ),
]

# ---------------------------------------------------------------------------------------------
# Matrix forms (im2col, flattened kernels, doubly block Toeplitz), numeric.
# ---------------------------------------------------------------------------------------------
IM2COL_HCMUT = dict(
    name="hcmut_im2col_4x4_by_3x3",
    source=f"{S000}: 'Rotate the kernel ... Rotation 180 ... Flatten the rotated kernel ... "
    "Compute dot-product ... X and W: aligned at left-top ... Get sub-image ... = 12' and the "
    "three following slides (= 10, = 8, = 12)",
    x=[[3, 1, 0, 1], [1, 1, 2, 0], [1, 2, 2, 1], [0, 1, 0, 2]],
    w=[[1, 0, 2], [1, 2, 0], [0, 1, 1]],
    w_rot180=[[1, 1, 0], [0, 2, 1], [2, 0, 1]],
    w_rot180_flat=[1, 1, 0, 0, 2, 1, 2, 0, 1],
    # the sub-images in the order the slides visit them (left-top, right, down-left, down-right)
    sub_images=[
        [[3, 1, 0], [1, 1, 2], [1, 2, 2]],
        [[1, 0, 1], [1, 2, 0], [2, 2, 1]],
        [[1, 1, 2], [1, 2, 2], [0, 1, 0]],
        [[1, 2, 0], [2, 2, 1], [1, 0, 2]],
    ],
    sub_images_flat=[
        [3, 1, 0, 1, 1, 2, 1, 2, 2],
        [1, 0, 1, 1, 2, 0, 2, 2, 1],
        [1, 1, 2, 1, 2, 2, 0, 1, 0],
        [1, 2, 0, 2, 2, 1, 1, 0, 2],
    ],
    dot_products=[12, 10, 8, 12],
    expected=[[12, 10], [8, 12]],
)

TOEPLITZ_IITJ = dict(
    name="iitj_block_toeplitz_correlation",
    source=f"{S002}: 'Step 1a ... x2[m, -n] = [5 1; 3 2] ... Step 1b ... x2[-m, -n] = [3 2; 5 1]"
    " ... H0 = [3 0; 1 3; 0 1] ... H1 = [2 0; 4 2; 0 4] ... A = [H0 0; H1 H0; 0 H1] ... y = A x "
    "[3 2 5 1]^T = [9 9 2 21 24 9 10 22 4]^T'",
    x1=[[3, 1], [2, 4]],
    x2=[[1, 5], [2, 3]],
    x2_fold_columns=[[5, 1], [3, 2]],  # x2[m, -n]
    x2_fold=[[3, 2], [5, 1]],  # x2[-m, -n]
    H0=[[3, 0], [1, 3], [0, 1]],
    H1=[[2, 0], [4, 2], [0, 4]],
    A=[
        [3, 0, 0, 0],
        [1, 3, 0, 0],
        [0, 1, 0, 0],
        [2, 0, 3, 0],
        [4, 2, 1, 3],
        [0, 4, 0, 1],
        [0, 0, 2, 0],
        [0, 0, 4, 2],
        [0, 0, 0, 4],
    ],
    v=[3, 2, 5, 1],
    y_flat=[9, 9, 2, 21, 24, 9, 10, 22, 4],
    expected=[[9, 9, 2], [21, 24, 9], [10, 22, 4]],
)

# ---------------------------------------------------------------------------------------------
# Symbolic im2col / kernel2row with gradients (003): X 3x3 (x11..x33), W 2x2 (w11..w22),
# Y = X * W (convolution, valid, 2x2).  Symbols are 1-based "x<row><col>", "w<row><col>",
# "dy<row><col>"; "0" is a zero.  Tests substitute numbers for the symbols.
# ---------------------------------------------------------------------------------------------
SYMBOLIC_HCMUT = dict(
    name="hcmut_symbolic_im2col_kernel2row_gradients",
    source=f"{S003}: 'X * W = Reshape_{{o1 x o2}}(W_flat x X_conv) = Reshape_{{o1 x o2}}(W_conv x "
    "X_flat)  dW = Reshape_{k1 x k2}(dY_flat x X_conv^T)  dX = Reshape_{i1 x i2}(W_conv^T x "
    "dY_flat)'",
    op="convolve",
    mode="valid",
    in_shape=(3, 3),
    kernel_shape=(2, 2),
    w_rot180=[["w22", "w21"], ["w12", "w11"]],
    w_flat=["w11", "w12", "w21", "w22"],
    # X_conv: one column per output (y11, y12, y21, y22), rows in the order of w_flat
    x_conv=[
        ["x22", "x23", "x32", "x33"],
        ["x21", "x22", "x31", "x32"],
        ["x12", "x13", "x22", "x23"],
        ["x11", "x12", "x21", "x22"],
    ],
    w_conv=[
        ["w22", "w21", "0", "w12", "w11", "0", "0", "0", "0"],
        ["0", "w22", "w21", "0", "w12", "w11", "0", "0", "0"],
        ["0", "0", "0", "w22", "w21", "0", "w12", "w11", "0"],
        ["0", "0", "0", "0", "w22", "w21", "0", "w12", "w11"],
    ],
    w_conv_T=[
        ["w22", "0", "0", "0"],
        ["w21", "w22", "0", "0"],
        ["0", "w21", "0", "0"],
        ["w12", "0", "w22", "0"],
        ["w11", "w12", "w21", "w22"],
        ["0", "w11", "0", "w21"],
        ["0", "0", "w12", "0"],
        ["0", "0", "w11", "w12"],
        ["0", "0", "0", "w11"],
    ],
    # dW_flat = dY_flat x X_conv^T, as sums of (dy, x) products.
    # CORRECTED (003_c6862b76ae2e33fc.txt): the notes then write 'Reshape to 2x2: dW =
    # [dy11 dy12; dy21 dy22]'; the reshaped matrix is [dw11 dw12; dw21 dw22] (dy for dw typo).
    dw=dict(
        w11=[("dy11", "x22"), ("dy12", "x23"), ("dy21", "x32"), ("dy22", "x33")],
        w12=[("dy11", "x21"), ("dy12", "x22"), ("dy21", "x31"), ("dy22", "x32")],
        w21=[("dy11", "x12"), ("dy12", "x13"), ("dy21", "x22"), ("dy22", "x23")],
        w22=[("dy11", "x11"), ("dy12", "x12"), ("dy21", "x21"), ("dy22", "x22")],
    ),
    # dX_flat = W_conv^T x dY_flat, as sums of (dy, w) products.
    dx=dict(
        x11=[("dy11", "w22")],
        x12=[("dy11", "w21"), ("dy12", "w22")],
        x13=[("dy12", "w21")],
        x21=[("dy11", "w12"), ("dy21", "w22")],
        # CORRECTED (003_c6862b76ae2e33fc.txt): both copies of the slide print
        # 'dx22 = dy11 w11 + dy12 w12 + dy21 w21 + dy11 w22'; the last term is dy22 w22 (row 5 of
        # the W_conv^T printed on the same slide is [w11 w12 w21 w22], and dy11 w22 already
        # appears in dx11 - each dy_ij meets each w_ab exactly once).
        x22=[("dy11", "w11"), ("dy12", "w12"), ("dy21", "w21"), ("dy22", "w22")],
        x23=[("dy12", "w11"), ("dy22", "w21")],
        x31=[("dy21", "w12")],
        x32=[("dy21", "w11"), ("dy22", "w12")],
        x33=[("dy22", "w11")],
    ),
    # CORRECTED (003_c6862b76ae2e33fc.txt): the final 'dX' grid reads 'dx31 dx31 dx33' in its
    # last row; the middle entry is dx32.
    dx_grid=[["x11", "x12", "x13"], ["x21", "x22", "x23"], ["x31", "x32", "x33"]],
)

# ---------------------------------------------------------------------------------------------
# Canonical-layer examples (ConvSpec): multi-channel, padded, grouped.
# ---------------------------------------------------------------------------------------------
# Only the top-left 5x5 of each 'Input Channel' is printed (followed by '...'); the notes' zero
# border is the padding (pad = 1).  Only the top-left output is computed in the notes, and it
# depends on the top-left 2x2 of each channel only, so the truncation does not matter for it.
RGB_LAYER_IITJ = dict(
    name="iitj_rgb_3x3x3_kernel_pad1_top_left",
    source=f"{S002}: 'The Convolution operation ... Input Channel #1 (Red) ... Kernel Channel "
    "#1 ... 308 ... Kernel Channel #2 ... -498 ... Kernel Channel #3 ... 164 ... + 1 = -25 Bias "
    "= 1 Output -25'",
    x=[
        [
            [156, 155, 156, 158, 158],
            [153, 154, 157, 159, 159],
            [149, 151, 155, 158, 159],
            [146, 146, 149, 153, 158],
            [145, 143, 143, 148, 158],
        ],
        [
            [167, 166, 167, 169, 169],
            [164, 165, 168, 170, 170],
            [160, 162, 166, 169, 170],
            [156, 156, 159, 163, 168],
            [155, 153, 153, 158, 168],
        ],
        [
            [163, 162, 163, 165, 165],
            [160, 161, 164, 166, 166],
            [156, 158, 162, 165, 166],
            [155, 155, 158, 162, 167],
            [154, 152, 152, 157, 167],
        ],
    ],
    w=[
        [[-1, -1, 1], [0, 1, -1], [0, 1, 1]],
        [[1, 0, 0], [1, -1, -1], [1, 0, -1]],
        [[0, 1, 1], [0, 1, 0], [1, -1, 1]],
    ],
    pad=1,
    stride=1,
    flip=False,  # the CNN layer: a cross-correlation (window times kernel, no rotation)
    bias=1,
    per_channel_top_left=[308, -498, 164],
    expected_top_left=-25,  # sum of the three plus the bias
)

# Output-size / parameter-count examples (no data values in the notes: the expected value is
# the output shape, and the count of weights).  ``out`` is the spatial output size per axis.
SHAPE_EXAMPLES = [
    dict(
        name="iitj_32x32x3_six_5x5_filters",
        n=32,
        k=5,
        stride=1,
        pad=0,
        c_in=3,
        c_out=6,
        out=28,
        source=f"{S002}: 'if we had 6 5x5 filters, we'll get 6 separate activation maps"
        ': ... a "new image" of size 28x28x6!\'',
    ),
    dict(
        name="iitj_7x7_3x3_stride1",
        n=7,
        k=3,
        stride=1,
        pad=0,
        c_in=1,
        c_out=1,
        out=5,
        source=f"{S002}: '7x7 input (spatially) assume 3x3 filter => 5x5 output' and "
        "'stride 1 => (7 - 3) / 1 + 1 = 5'",
    ),
    dict(
        name="iitj_7x7_3x3_stride2",
        n=7,
        k=3,
        stride=2,
        pad=0,
        c_in=1,
        c_out=1,
        out=3,
        source=f"{S002}: '3x3 filter applied with stride 2 => 3x3 output!' and "
        "'stride 2 => (7 - 3) / 2 + 1 = 3'",
    ),
    dict(
        name="iitj_7x7_3x3_pad1",
        n=7,
        k=3,
        stride=1,
        pad=1,
        c_in=1,
        c_out=1,
        out=7,
        source=f"{S002}: 'e.g. input 7x7 3x3 filter, applied with stride 1 pad with 1 pixel "
        "border => what is the output? 7x7 output!'",
    ),
    # 'F = 5 => zero pad with 2, F = 7 => zero pad with 3' (will preserve size spatially): the
    # notes give no input size for these; 7 is the running 7x7 example of the same slides.
    dict(
        name="iitj_7x7_5x5_pad2_preserves",
        n=7,
        k=5,
        stride=1,
        pad=2,
        c_in=1,
        c_out=1,
        out=7,
        source=f"{S002}: 'zero-padding with (F-1)/2. (will preserve size spatially) e.g. F = 3 "
        "=> zero pad with 1 F = 5 => zero pad with 2'",
    ),
    dict(
        name="iitj_7x7_7x7_pad3_preserves",
        n=7,
        k=7,
        stride=1,
        pad=3,
        c_in=1,
        c_out=1,
        out=7,
        source=f"{S002}: 'F = 7 => zero pad with 3'",
    ),
    dict(
        name="iitj_32x32x3_ten_5x5_stride1_pad2",
        n=32,
        k=5,
        stride=1,
        pad=2,
        c_in=3,
        c_out=10,
        out=32,
        params_per_filter=76,
        params=760,
        source=f"{S002}: 'Input volume: 32x32x3 10 5x5 filters with stride 1, pad 2 ... "
        "(32+2*2-5)/1+1 = 32 spatially, so 32x32x10 ... each filter has 5*5*3 + 1 = 76 params "
        "=> 76*10 = 760'",
    ),
    dict(
        name="ugr_10x10x3_standard_3x3x3_x64",
        n=10,
        k=3,
        stride=1,
        pad=0,
        c_in=3,
        c_out=64,
        out=8,
        params=1792,
        source=f"{S001}: 'We apply a kernel (3x3x3) over the whole input volume (10x10x3) ... "
        "3 x 3 x 3 x 64 + 64 = 1792 parameters'",
    ),
]

# '7x7 input ... 3x3 filter applied with stride 3? doesn't fit! ... stride 3 => (7 - 3) / 3 + 1
# = 2.33'.  The same notes later give n_out = floor((n_in + 2p - k) / s) + 1, i.e. 2.
STRIDE_DOES_NOT_FIT = dict(
    name="iitj_7x7_3x3_stride3_does_not_fit",
    source=f"{S002}: 'cannot apply 3x3 filter on 7x7 input with stride 3 ... stride 3 => "
    "(7 - 3) / 3 + 1 = 2.33' and 'n_out = floor((n_in + 2p - k) / s) + 1'",
    n=7,
    k=3,
    stride=3,
    pad=0,
    ratio_as_written=2.33,
    floor_out=2,
)

DEPTHWISE_SEPARABLE_UGR = dict(
    name="ugr_depthwise_separable_10x10x3",
    source=f"{S001}: 'We apply one kernel (3x3x1) per channel in the input volume (10x10x3). We "
    "then apply a pointwise convolutional layer (1x1x3) on the resulting volume (8x8x3) ... "
    "(3 x 3 x 1 x 3 + 3) + (1 x 1 x 3 x 64 + 64) = 286 parameters'",
    n=10,
    k=3,
    c_in=3,
    c_out=64,
    depthwise_out=(3, 8, 8),  # channels, height, width
    depthwise_params=3 * 3 * 1 * 3 + 3,
    pointwise_params=1 * 1 * 3 * 64 + 64,
    params=286,
)

# ---------------------------------------------------------------------------------------------
# Properties stated in 004 (no numeric example there), applied to inputs of the examples above;
# the expected value is the other example's written output.
# ---------------------------------------------------------------------------------------------
PROPERTY_EXAMPLES = [
    dict(
        name="convolution_theorem_on_iitj_3x3_by_1x3",
        source=f"{S004}: '(f * g)(t) = F^-1{{F{{f(t)}} F{{g(t)}}}}' applied to the example "
        "'iitj_conv_3x3_by_1x3_full' of 002",
        property="convolution_theorem",
        example="iitj_conv_3x3_by_1x3_full",
    ),
    dict(
        name="convolution_theorem_on_iitj_3x3_by_3x2",
        source=f"{S004}: 'Convolution in the time domain is equivalent to multiplication in "
        "frequency domain' applied to 'iitj_conv_3x3_by_3x2_full' of 002",
        property="convolution_theorem",
        example="iitj_conv_3x3_by_3x2_full",
    ),
    dict(
        name="commutativity_on_iitj_2x3_by_3x1",
        source=f"{S004}: 'Commutativity: f * g = g * f' applied to 'iitj_conv_2x3_by_3x1_full'",
        property="commutative",
        example="iitj_conv_2x3_by_3x1_full",
    ),
    dict(
        name="separable_kernel_iitj_3x3_by_3x2",
        source=f"{S001}: 'a separable kernel function leads to a separable convolution' applied "
        "to 'iitj_conv_3x3_by_3x2_full' (h = ones(3, 1) x ones(1, 2))",
        property="separable",
        example="iitj_conv_3x3_by_3x2_full",
        column=[1, 1, 1],
        row=[1, 1],
    ),
]

# ---------------------------------------------------------------------------------------------
# Examples in the notes that could not be turned into golden data, and why.
# ---------------------------------------------------------------------------------------------
DROPPED = [
    dict(
        source=f"{S001}: 'Original ... 0 0 0 / 0 0 1 / 0 0 0 ... Shifted right by 1 pixel (we "
        "lose the first column of pixels on the right)' and the 'Shifted left' twin",
        reason="the image is a photograph (no numbers), and after extraction it is ambiguous "
        "which operation (the slide notes 'actually shows correlation not convolution') and "
        "which kernel go with which shift",
    ),
    dict(
        source=f"{S001}: intermediate slides '= 9', '= 9 8', ..., '= 1 2 3 / 4 5 6 / 7' ",
        reason="prefixes of the final 3x3 outputs, which are kept; the window overlays are "
        "garbled by extraction (e.g. '4 50 61 0')",
    ),
    dict(
        source=f"{S002}: 'Determine the correlation between two matrices x1 = [1 5; 2 4] x2 = "
        "[3 2; 4 1]' and 'x1 = [3 2; 1 5] x2 = [3 2; 1 5]'",
        reason="exercises without an answer in the notes: no expected value to transcribe",
    ),
    dict(
        source=f"{S002}: 'Max Pooling Single depth slice ... 3.0 3.0 3.0 / 3.0 3.0 3.0 / 3.0 "
        "2.0 3.0'",
        reason="max pooling is not a convolution and has no gpuconv counterpart (the numbers "
        "do check out: 3x3 windows, stride 1, over the 5x5 slice)",
    ),
    dict(
        source=f"{S002}: 'Types of Deconvolution: Padding-free ... Output Size= stride("
        "inputsize-1)+filtersize-(2*padding)' and 'Deconvolution (stride=2)'",
        reason="transposed convolution is given as a formula and pictures only; no numeric "
        "example to transcribe",
    ),
    dict(
        source=f"{S003}: 'y11 = w22x11 + w21x12 + y12 = w22x12 + w21x13 + w12x21 + w11x22 / "
        "w12x21 + w11x22 + w11x23'",
        reason="two columns of formulas interleaved by extraction; the same content is kept "
        "unambiguously as the W_conv / X_conv matrices of the same slides",
    ),
    dict(
        source=f"{S004}: 'f(x) = 1 if x in [-1, 2] ... g(x) = 1 - 0.2 * |x| if x > 0' (1D "
        "convolution animation)",
        reason="continuous functions shown only as an animation; no output values",
    ),
]
