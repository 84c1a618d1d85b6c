"""The text line chart: points land where their values say, lines stay connected."""

import math
import re

from fedgossip.report.chart import Series, line_chart


def plot_rows(chart, height):
    """Return the plot area of a chart without a title, top row first, without the y labels."""
    return [re.split("[┤│]", line, maxsplit=1)[1] for line in chart.plain.splitlines()[:height]]


def test_rising_line_goes_from_bottom_left_to_top_right():
    chart = line_chart([Series("a", [0, 1, 2, 3], [0, 1, 2, 3])], width=4, height=4)
    assert plot_rows(chart, 4) == ["   *", "  * ", " *  ", "*   "]


def test_axes_are_labelled_with_their_ends_and_the_legend():
    chart = line_chart(
        [Series("avg", [10, 20], [0.25, 0.75]), Series("mean", [10, 20], [0.5, 0.5], marker="+")],
        width=20,
        height=5,
        title="accuracy",
        x_label="round",
    ).plain
    lines = chart.splitlines()
    assert lines[0] == "accuracy"
    assert lines[1].startswith("0.75 ┤") and lines[3].startswith(" 0.5 ┤") and lines[5].startswith("0.25 ┤")
    assert lines[6] == "     └" + "─" * 20
    assert lines[7].split() == ["10", "round", "20"]
    assert lines[8].split() == ["*", "avg", "+", "mean"]
    assert all(len(line) <= 5 + 1 + 20 for line in lines)


def test_a_jump_between_neighbouring_columns_is_filled():
    rows = plot_rows(line_chart([Series("a", [0, 1], [0, 10])], width=2, height=5), 5)
    assert rows == [" *", " *", " *", " *", "* "]


def test_missing_values_are_skipped():
    series = Series("a", [0, 1, 2, 3], [0.0, None, math.nan, 3.0])
    rows = plot_rows(line_chart([series], width=4, height=4), 4)
    assert rows == ["   *", "  * ", " *  ", "*   "]


def test_a_single_point_is_centred():
    rows = plot_rows(line_chart([Series("a", [5], [0.5])], width=5, height=5), 5)
    assert rows == ["     ", "     ", "  *  ", "     ", "     "]


def test_no_data_is_one_line():
    chart = line_chart([Series("a", [1, 2], [None, None])], title="accuracy")
    assert chart.plain == "accuracy: no data to chart yet"


def test_the_first_series_stays_visible_where_curves_coincide():
    same = ([0, 1], [0, 1])
    chart = line_chart([Series("a", *same), Series("b", *same, marker="+")], width=2, height=2)
    assert plot_rows(chart, 2) == [" *", "* "]


def test_a_quantity_that_stayed_zero_keeps_a_zero_axis():
    lines = line_chart([Series("a", [0, 0], [0.5, 0.9])], width=10, height=3).plain.splitlines()
    assert lines[-2].split()[0] == "0"


def _x_ends(chart) -> list[str]:
    return chart.plain.splitlines()[-2].split()


def test_a_single_round_gets_an_axis_of_whole_rounds_around_it():
    # One evaluation at round 3 used to give an axis from 2.85 to 3.15.
    assert _x_ends(line_chart([Series("a", [3], [0.5])], width=20, height=3)) == ["2", "4"]
    assert _x_ends(line_chart([Series("a", [1], [0.5])], width=20, height=3)) == ["0", "2"]
    assert _x_ends(line_chart([Series("a", [200], [0.5])], width=20, height=3)) == ["190", "210"]


def test_a_single_fractional_value_gets_round_labels_a_digit_below_it():
    lines = line_chart([Series("a", [1], [0.25])], width=20, height=3).plain.splitlines()
    assert [line.split("┤")[0].strip() for line in lines[:3]] == ["0.26", "0.25", "0.24"]


def test_extreme_values_from_a_damaged_file_still_chart():
    # Subnormals, the largest floats and a span wider than the largest float: no overflow, no division by 0.
    biggest = 1.7976931348623157e308
    for xs in ([5e-324], [biggest], [-biggest], [0, 5e-324], [-biggest, biggest], [-1e308, 1e308]):
        lines = line_chart([Series("a", xs, [1.0] * len(xs))], width=10, height=3).plain.splitlines()
        assert len(lines) == 6 and "*" in "".join(lines[:3]), xs
