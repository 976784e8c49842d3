"""Stage 5, teaching: the exercises and their checks (`exercises`), the student edition made from
the notebooks (`student`), the book of a run's executed notebooks (`book`), and whether a person
is looking at a notebook (`frontend`, for the widget cells).
"""
