"""Stage 5, teaching: the exercises, their checks and `use` (the student's function once its check
passed), a student's loss terms in the real training loop (`in_the_loop`), the student edition
made from the notebooks (`student`), a class graded with student code confined (`grade`), the book
of a run's executed notebooks (`book`), and whether a person is looking at a notebook (`frontend`:
widget cells, JupyterLab's profile).
"""
