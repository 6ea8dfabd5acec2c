"""Checks of rendered matplotlib figures, shared by the tests of the modules that draw them."""


def assert_texts_inside_and_apart(fig):
    """Every visible text of ``fig`` (titles, axis labels, tick labels, legends, marks) lies
    inside the figure, and no two overlap: measured on the rendered extents."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    undrawn = set()  # tick labels of ticks outside their axis's view are not drawn
    for ax in fig.axes:
        for axis, (low, high) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            low, high = min(low, high), max(low, high)
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                inside = low - 1e-9 * abs(low) <= tick.get_loc() <= high + 1e-9 * abs(high)
                if not (ax.axison and axis.get_visible() and inside):
                    undrawn.update({id(tick.label1), id(tick.label2)})
    boxes = []
    for text in fig.findobj(Text):
        if not (text.get_visible() and text.get_text().strip()) or id(text) in undrawn:
            continue
        box = Text.get_window_extent(text, renderer)  # an annotation's text, not its leader
        if box.width == 0 or box.height == 0:
            continue
        assert box.x0 >= -0.5 and box.y0 >= -0.5, text.get_text()
        assert box.x1 <= width + 0.5 and box.y1 <= height + 0.5, text.get_text()
        boxes.append((text.get_text(), box))
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            overlap_x = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            overlap_y = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            assert not (overlap_x > 1 and overlap_y > 1), (a, b)
