//! Small enums with one name per value, the same on the command line, in
//! run.json and in error messages: [`named_values!`] writes `ALL`, `as_str`,
//! `Display` and `FromStr` from one list, so the choices an error or
//! `--help` names are generated from the type and cannot drift from it.

/// "a", "a or b", "a, b or c": the choices of an error message.
pub fn choice_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Writes, for a field-less enum, `ALL` (every value, in the order given),
/// `as_str` (its name), `Display` (the name) and `FromStr` (the name, or an
/// alias; otherwise `unknown <what> "<input>"; choose from <names>`).
///
/// ```
/// #[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// pub enum Net { Tap, User }
/// isobench_workloads::named_values!(Net, "vm network", { Tap = "tap", User = "user" }, aliases { "slirp" = User });
/// assert_eq!("slirp".parse::<Net>(), Ok(Net::User));
/// assert_eq!("x".parse::<Net>().unwrap_err(), "unknown vm network \"x\"; choose from tap or user");
/// ```
#[macro_export]
macro_rules! named_values {
    ($ty:ident, $what:literal, { $($variant:ident = $name:literal),+ $(,)? } $(, aliases { $($alias:literal = $target:ident),+ $(,)? })?) => {
        impl $ty {
            /// Every value, in the order the command line lists them.
            pub const ALL: [$ty; [$($name),+].len()] = [$($ty::$variant),+];

            /// The value's name on the command line and in results files.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = String;

            /// A value's name (surrounding blanks ignored); the error is one
            /// line naming the input and every choice.
            fn from_str(s: &str) -> Result<$ty, String> {
                let s = s.trim();
                $($(if s == $alias {
                    return Ok($ty::$target);
                })+)?
                $ty::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<&str> = $ty::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown {} {:?}; choose from {}", $what, s, $crate::names::choice_list(&names))
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::choice_list;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Colour {
        Red,
        Green,
        Blue,
    }
    crate::named_values!(Colour, "colour", { Red = "red", Green = "green", Blue = "blue" }, aliases { "verde" = Green });

    #[test]
    fn every_value_parses_back_from_its_name_and_aliases_parse() {
        assert_eq!(Colour::ALL, [Colour::Red, Colour::Green, Colour::Blue]);
        for c in Colour::ALL {
            assert_eq!(c.to_string().parse::<Colour>(), Ok(c));
        }
        assert_eq!(" verde ".parse::<Colour>(), Ok(Colour::Green));
    }

    #[test]
    fn the_error_names_the_input_and_every_choice() {
        assert_eq!("mauve".parse::<Colour>().unwrap_err(), "unknown colour \"mauve\"; choose from red, green or blue");
        assert_eq!(choice_list(&["a"]), "a");
        assert_eq!(choice_list(&["a", "b"]), "a or b");
        assert_eq!(choice_list(&[]), "");
    }
}
